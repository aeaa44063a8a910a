"""Community model files (`.pth`, `.safetensors`): Real-ESRGAN, SwinIR, HAT, SPAN... via spandrel.

spandrel recognises an architecture and its hyper-parameters from the state dict alone. We
read the file ourselves, never running code from it: safetensors is a plain tensor format,
and `.pth`/`.pt`/`.ckpt` go through `torch.load(weights_only=True)` (spandrel's own loader
would use a custom unpickler instead). Files over `MAX_MODEL_BYTES` are refused before reading.
The model is wrapped as an `SRModel`, so tiling, fp16, batching and the Y'CbCr handling of the
engine apply as to the project's own models.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from upscaler.errors import ModelError
from upscaler.models.base import SRModel

#: Largest weights file read (the biggest common community models, HAT-L/DAT, are ~0.2 GB).
MAX_MODEL_BYTES = int(os.environ.get("UPSCALER_MAX_MODEL_BYTES", str(2 << 30)))
COMMUNITY_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
#: Tile overlap in input pixels: community nets do not state a receptive field; 32 is what
#: the usual SR front-ends (chaiNNer, Real-ESRGAN's own tiler) use.
_TILE_MARGIN = 32

_TORCHVISION_SHIM: list[torch.library.Library] = []


def _import_spandrel() -> Any:
    """Import spandrel, which imports torchvision.

    PyPI's torchvision is built against CUDA torch: beside the CPU torch its compiled ops
    cannot load, and torchvision 0.28's import then fails registering fake kernels for two of
    those ops ("operator torchvision::nms does not exist"). Declaring the two schemas (no
    kernels: calling them still fails) lets the pure-Python parts import; spandrel uses only
    `torchvision.transforms` there, in two non-SR architectures."""
    try:
        import spandrel
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _TORCHVISION_SHIM:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] in ("torchvision", "spandrel")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SHIM.append(lib)  # the definitions live as long as this object
        import spandrel
    return spandrel


def read_weights(path: str | Path) -> dict[str, Any]:
    """The top-level dict of a weights file, read without executing anything in it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelError(
            f"{path} is {size / 2**20:.0f} MiB, over the {MAX_MODEL_BYTES / 2**20:.0f} MiB "
            "limit for model files (UPSCALER_MAX_MODEL_BYTES)"
        )
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            payload = load_file(path, device="cpu")
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a bad or hostile file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path} is not a readable checkpoint or model file: {reason[:200]}"
        ) from None
    if not isinstance(payload, dict):
        raise ModelError(f"{path} does not hold a state dict (found {type(payload).__name__})")
    return payload


@dataclass(frozen=True)
class CommunityInfo:
    """What `upscaler models --file` prints about a community model file."""

    architecture: str
    scale: int
    params: int
    input_channels: int
    output_channels: int
    supports_half: bool
    supports_bfloat16: bool
    tiling: str
    tags: tuple[str, ...]

    @property
    def colour(self) -> str:
        return "luma (Y)" if self.input_channels == 1 else "RGB (made with the video's matrix)"


class CommunityModel(SRModel):
    """A spandrel model descriptor as an `SRModel` (the descriptor pads to its size rules)."""

    #: runs eager: many of these nets (window attention, size padding) do not trace to ONNX
    onnx_exportable = False

    def __init__(self, descriptor: Any, info: CommunityInfo) -> None:
        super().__init__(info.scale)
        self.net = descriptor.model  # registered, so .to()/.half() move the descriptor's model
        self._descriptor = descriptor
        self.info = info
        self.channels = "y" if info.input_channels == 1 else "rgb"  # type: ignore[misc]
        self.receptive_field = _TILE_MARGIN  # type: ignore[misc]
        self.supports_half = info.supports_half
        # spandrel: INTERNAL/DISCOURAGED tiling means the net needs the whole frame
        self.tiling_allowed = info.tiling == "SUPPORTED"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._descriptor(x)


def _descriptor(state_dict: dict[str, Any], path: str | Path) -> Any:
    spandrel = _import_spandrel()
    try:
        state_dict = spandrel.canonicalize_state_dict(state_dict)
        descriptor = spandrel.MAIN_REGISTRY.load(state_dict)
    except spandrel.UnsupportedModelError:
        raise ModelError(
            f"{path}: unknown model architecture (not one of the ~40 that spandrel "
            f"{spandrel.__version__} recognises, nor an upscaler checkpoint)"
        ) from None
    except Exception as exc:  # an arch detected but its tensors do not fit it
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelError(f"{path}: could not build the model ({first})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path}: a {descriptor.architecture.name} model is not an upscaler")
    return descriptor


def describe_descriptor(descriptor: Any) -> CommunityInfo:
    return CommunityInfo(
        architecture=descriptor.architecture.name,
        scale=descriptor.scale,
        params=sum(p.numel() for p in descriptor.model.parameters()),
        input_channels=descriptor.input_channels,
        output_channels=descriptor.output_channels,
        supports_half=descriptor.supports_half,
        supports_bfloat16=descriptor.supports_bfloat16,
        tiling=descriptor.tiling.name,
        tags=tuple(descriptor.tags),
    )


def describe(path: str | Path) -> CommunityInfo:
    """Architecture, scale, size and colour of a community model file."""
    return describe_descriptor(_descriptor(read_weights(path), path))


def community_model(
    state_dict: dict[str, Any], path: str | Path, scale: int | None = None
) -> CommunityModel:
    """Build the model a community state dict describes; check it is an RGB/Y upscaler of
    `scale` the engine can run."""
    descriptor = _descriptor(state_dict, path)
    info = describe_descriptor(descriptor)
    if descriptor.purpose != "SR" or info.scale not in (2, 3, 4):
        raise ModelError(
            f"{path}: a {info.architecture} {descriptor.purpose} model at x{info.scale}; "
            "only x2, x3 and x4 upscalers are supported"
        )
    if scale is not None and info.scale != scale:
        raise ModelError(
            f"{path} is a x{info.scale} {info.architecture} model, not x{scale}; "
            f"use --scale {info.scale}"
        )
    if (info.input_channels, info.output_channels) not in ((3, 3), (1, 1)):
        raise ModelError(
            f"{path}: {info.input_channels} -> {info.output_channels} channels; only RGB "
            "(3 -> 3) and grey (1 -> 1) models can upscale video"
        )
    return CommunityModel(descriptor.eval(), info)
