"""Model registry: one name -> one builder, its scales and its shipped weights.

Architectures register themselves with `@register(...)`; `load_model` builds one by name
(with the shipped checkpoint for that scale) or from a checkpoint path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from upscaler.errors import ModelError
from upscaler.models.base import SRModel
from upscaler.models.checkpoint import FORMAT_VERSION, read_checkpoint, validate_checkpoint

DEFAULT_MODEL = "fast"
#: A `--model` value ending so is a file (checkpoint or community model), never a name.
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., SRModel]
    scales: tuple[int, ...]
    weights: dict[int, str] = field(default_factory=dict)  # scale -> file in upscaler/weights
    description: str = ""
    window: int = 1  # frames in per frame out (models.base.SRModel.window)

    @property
    def needs_weights(self) -> bool:
        return bool(self.weights) or self.name not in _WEIGHTLESS


_REGISTRY: dict[str, ModelSpec] = {}
_WEIGHTLESS = {"bicubic", "lanczos"}


def register(
    name: str,
    scales: tuple[int, ...],
    weights: dict[int, str] | None = None,
    description: str = "",
    window: int = 1,
) -> Callable[[Callable[..., SRModel]], Callable[..., SRModel]]:
    """Decorator: register `builder(scale, **config) -> SRModel` under `name`; `window`
    declares how many neighbouring frames the model reads (see `SRModel.window`)."""

    def wrap(builder: Callable[..., SRModel]) -> Callable[..., SRModel]:
        _REGISTRY[name] = ModelSpec(name, builder, scales, weights or {}, description, window)
        return builder

    return wrap


def _ensure_loaded() -> None:
    # Importing the package registers every architecture.
    import upscaler.models  # noqa: F401


def available_models() -> dict[str, ModelSpec]:
    """All registered models by name."""
    _ensure_loaded()
    return dict(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or a ModelError listing the valid names."""
    specs = available_models()
    if name not in specs:
        raise ModelError(f"unknown model {name!r}; choose from: {', '.join(sorted(specs))}")
    return specs[name]


def shipped_weights_path(name: str, scale: int) -> Path | None:
    """Path of the shipped checkpoint for (name, scale), if one is shipped."""
    filename = get_spec(name).weights.get(scale)
    if filename is None:
        return None
    path = Path(str(resources.files("upscaler.weights").joinpath(filename)))
    return path if path.is_file() else None


def build_from_checkpoint(path: str | Path, scale: int | None = None) -> SRModel:
    """Rebuild a model from a checkpoint file; check arch and scale match."""
    return _build_from_payload(read_checkpoint(path), path, scale)


def _build_from_payload(payload: dict, path: str | Path, scale: int | None) -> SRModel:
    spec = get_spec(payload["arch"])
    if scale is not None and payload["scale"] != scale:
        raise ModelError(
            f"{path} is a x{payload['scale']} {payload['arch']} checkpoint, not x{scale}"
        )
    model = spec.builder(payload["scale"], **payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(
            f"{path} does not match the {payload['arch']} architecture: {exc}"
        ) from None
    model.meta = payload.get("meta", {})  # type: ignore[assignment]
    return model


def build_from_file(path: str | Path, scale: int | None = None) -> SRModel:
    """A model from a file: an upscaler checkpoint, or a community model (spandrel)."""
    from upscaler.models.community import community_model, read_weights

    payload = read_weights(path)
    if "format" in payload and "state_dict" in payload:
        if payload["format"] != FORMAT_VERSION:
            raise ModelError(f"{path} is not an upscaler checkpoint (format {FORMAT_VERSION})")
        return _build_from_payload(validate_checkpoint(payload, path), path, scale)
    return community_model(payload, path, scale)


def load_model(name_or_path: str, scale: int, device: str | torch.device = "cpu") -> SRModel:
    """Build a ready-to-run model (eval mode, on `device`) by registry name or checkpoint path."""
    if name_or_path.endswith(MODEL_FILE_SUFFIXES) or Path(name_or_path).is_file():
        model = build_from_file(name_or_path, scale)
    else:
        spec = get_spec(name_or_path)
        if scale not in spec.scales:
            raise ModelError(
                f"model {name_or_path!r} supports scale "
                f"{', '.join(f'x{s}' for s in spec.scales)}, not x{scale}"
            )
        weights = shipped_weights_path(name_or_path, scale)
        if weights is not None:
            model = build_from_checkpoint(weights, scale)
        elif spec.name in _WEIGHTLESS:
            model = spec.builder(scale)
        else:
            raise ModelError(f"no trained weights are shipped for {name_or_path} x{scale}")
    return model.eval().to(device)
