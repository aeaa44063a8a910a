"""One ONNX Runtime session per frame size: uint8 Y'CbCr planes in, uint8 planes out.

For a luma model on 8-bit video the whole per-frame job (codes -> floats, the model on Y,
MATLAB bicubic on Cb and Cr, rounding and clamping back to codes) is one graph: no float
planes are built in Python, torch's conversions and the separate chroma session are gone, and
ONNX Runtime plans all of it in one arena. The graph is traced from the same modules the
eager path runs (the model, `BicubicChroma`, the `to_codes` arithmetic), so its outputs are
the same code values (tested: identical on the sample frames; a rare 1-code difference at an
exact .5 is the stated tolerance).

Exported per frame size (static H and W, dynamic batch): the odd-size branches of the model
and the chroma conv are traced for that size, and ONNX Runtime can fold every shape.
"""

from __future__ import annotations

import copy
import functools
import io
import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from upscaler.engine.chroma import BicubicChroma, chroma_factor
from upscaler.engine.onnx_runtime import (
    _OPSET,
    RuntimeSelector,
    _atomic_write,
    cache_dir,
    model_key,
    ort_session,
)
from upscaler.models.base import SRModel

log = logging.getLogger(__name__)
_VERSION = "yuv8-v2"  # part of the cached file's name: bump when the graph changes
Frames = Sequence[Sequence[np.ndarray]]


def _codes(x: torch.Tensor) -> torch.Tensor:
    """As `colour.to_codes(x, 8)`: scaled, rounded half to even, clamped, uint8."""
    return x.mul(255.0).round().clamp(0, 255).to(torch.uint8)


def _without_final_shuffle(model: SRModel, example: torch.Tensor) -> tuple[nn.Module, int]:
    """`model` minus a final `nn.PixelShuffle` (attribute `shuffle`), and its factor, when
    rounding before the shuffle gives the same codes on `example` (a permutation commutes
    with rounding, so it does exactly when the shuffle is the last step); else (model, 1).
    Shuffling uint8 instead of float moves a quarter of the bytes: ~5 % of the graph's CPU
    time for `fast` at 1080p output."""
    shuffle = getattr(model, "shuffle", None)
    if not isinstance(shuffle, nn.PixelShuffle):
        return model, 1
    trunk = copy.copy(model)  # shares the weights; only its own module table differs
    trunk._modules = {**model._modules, "shuffle": nn.Identity()}
    factor = shuffle.upscale_factor
    with torch.inference_mode():
        want = _codes(model(example))
        try:
            same = torch.equal(want, F.pixel_shuffle(_codes(trunk(example)), factor))
        except RuntimeError:  # later layers cannot take the unshuffled tensor
            same = False
    return (trunk, factor) if same else (model, 1)


class YuvGraph(nn.Module):
    """uint8 [N,1,H,W] Y (and [N,1,h,w] Cb, Cr) -> uint8 planes `scale` times larger."""

    def __init__(self, model: nn.Module, shuffle: int, chroma: BicubicChroma | None) -> None:
        super().__init__()
        self.model, self.shuffle, self.chroma = model, shuffle, chroma

    def forward(self, *planes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # Divided (not multiplied by 1/255) exactly as `pipeline.to_planes` does.
        y = _codes(self.model(planes[0].float().div(255.0)))
        if self.shuffle > 1:
            y = F.pixel_shuffle(y, self.shuffle)
        if self.chroma is None:
            return (y,)
        return (y, *(_codes(self.chroma(p.float().div(255.0))) for p in planes[1:]))


def export_fused(model: SRModel, shapes: tuple[tuple[int, int], ...], scale: int) -> Path:
    """The fused graph for planes of `shapes` ((H, W) of Y, then of Cb and Cr), cached."""
    sizes = "_".join(f"{h}x{w}" for h, w in shapes)
    path = cache_dir() / "onnx" / f"{model_key(model)}-{_VERSION}-{sizes}.onnx"
    if path.is_file():
        return path
    trunk, shuffle = _without_final_shuffle(model, torch.rand(1, 1, *shapes[0]))
    graph = YuvGraph(trunk, shuffle, BicubicChroma(scale) if len(shapes) == 3 else None).eval()
    names = ["y", "u", "v"][: len(shapes)]
    examples = tuple(torch.zeros(1, 1, h, w, dtype=torch.uint8) for h, w in shapes)
    outputs = [n.upper() for n in names]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings: the size branches are constants here
        torch.onnx.export(
            graph,
            examples,
            buf,
            dynamo=False,
            input_names=names,
            output_names=outputs,
            opset_version=_OPSET,
            dynamic_axes={n: {0: "n"} for n in names + outputs},
        )
    _atomic_write(path, buf.getvalue())
    return path


def _chroma_out(shapes: tuple[tuple[int, int], ...], scale: int) -> tuple[int, int]:
    """The output chroma size the eager path makes (`Upscaler.upscale`): ceil-scaled."""
    (h, w), (ch, cw) = shapes[0], shapes[1]
    return -(-h * scale * ch // h), -(-w * scale * cw // w)


def fusable(model: SRModel, shapes: tuple[tuple[int, int], ...], scale: int) -> bool:
    """Whether the fused graph reproduces the eager path for planes of `shapes`: a luma
    model, grey or chroma that `BicubicChroma` upscales (an integer factor, >= 3 samples)."""
    if model.channels != "y" or len(shapes) not in (1, 3) or shapes[0][0] % 2 or shapes[0][1] % 2:
        return False  # (odd sizes would work too; video has none, so they stay untested)
    if len(shapes) == 1:
        return True
    return (
        shapes[1] == shapes[2]
        and chroma_factor((1, 1, *shapes[1]), _chroma_out(shapes, scale)) == scale
    )


class FusedYuv:
    """The fused session for one frame size, with reused input batch buffers."""

    def __init__(self, path: Path, shapes: tuple[tuple[int, int], ...], threads: int) -> None:
        self.session = ort_session(path, threads)
        self.shapes = shapes
        self._names = ["y", "u", "v"][: len(shapes)]
        self._buffers: dict[int, list[np.ndarray]] = {}  # by batch size
        self._lock = threading.Lock()

    def __call__(self, frames: Frames) -> list[list[np.ndarray]]:
        """Per-frame uint8 planes (any strides, e.g. views of decoded frames) -> per-frame
        upscaled planes (views of the session's outputs)."""
        n = len(frames)
        with self._lock:  # the batch buffers are reused: one call at a time
            if n not in self._buffers:
                self._buffers[n] = [np.empty((n, 1, h, w), np.uint8) for h, w in self.shapes]
            inputs = self._buffers[n]
            for j, planes in enumerate(frames):
                for buf, plane in zip(inputs, planes, strict=True):
                    buf[j, 0] = plane
            outputs = self.session.run(None, dict(zip(self._names, inputs, strict=True)))
        return [[out[j, 0] for out in outputs] for j in range(n)]


@functools.lru_cache(maxsize=16)
def _fused(path: Path, shapes: tuple[tuple[int, int], ...], threads: int) -> FusedYuv:
    """One session per file and thread count in a process, as `onnx_runtime._session`."""
    return FusedYuv(path, shapes, threads)


def fused_session(
    model: SRModel, selector: RuntimeSelector, shapes: tuple[tuple[int, int], ...], scale: int
) -> FusedYuv | None:
    """The fused session for 8-bit frames of `shapes`, where it applies: a fusable model whose
    runtime for this size is ONNX Runtime fp32 (`auto` measured it, or `onnx` was asked for).
    None otherwise, or when the export or the session fails (the eager path still works)."""
    if not fusable(model, shapes, scale):
        return None
    if selector.name_for((1, 1, *shapes[0])) != "onnx":
        return None
    try:
        return _fused(export_fused(model, shapes, scale), shapes, torch.get_num_threads())
    except Exception as exc:  # any export/runtime failure: the unfused path still works
        log.warning("fused ONNX graph unavailable (%s); using the separate stages", exc)
        return None
