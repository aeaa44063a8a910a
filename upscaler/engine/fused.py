"""One session per frame size: uint8 Y'CbCr planes in, uint8 planes out.

For a luma model on 8-bit video the whole per-frame job (codes -> floats, the model on Y,
MATLAB bicubic on Cb and Cr, rounding and clamping back to codes) is one graph: no float
planes are built in Python, torch's conversions and the separate chroma session are gone, and
ONNX Runtime plans all of it in one arena. The graph is traced from the same modules the
eager path runs (the model, `BicubicChroma`, the `to_codes` arithmetic), so its outputs are
the same code values (tested: identical on the sample frames; a rare 1-code difference at an
exact .5 is the stated tolerance).

Exported per frame size (static H and W, dynamic batch): the odd-size branches of the model
and the chroma conv are traced for that size, and the runtime can fold every shape. The graph
runs on ONNX Runtime or OpenVINO, as the model's runtime choice says; for `openvino-bf16` it is
two graphs: the model's learned residual in bf16, then everything else in fp32
(`engine.openvino_runtime`).
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from upscaler.engine import openvino_runtime as ov
from upscaler.engine.chroma import BicubicChroma, chroma_factor
from upscaler.engine.onnx_runtime import (
    RuntimeSelector,
    cache_dir,
    export_graph,
    model_key,
    ort_session,
)
from upscaler.models.base import SRModel

log = logging.getLogger(__name__)
_VERSION = "yuv8-v2"  # part of the cached file's name: bump when the graph changes
Frames = Sequence[Sequence[np.ndarray]]
#: the runtimes the fused graph runs on (any other choice runs the separate stages)
FUSED_RUNTIMES = ("onnx", "openvino", "openvino-bf16")
_N = {0: "n"}  # dynamic batch; every other size is static


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


def _chroma_codes(chroma: BicubicChroma | None, planes: Sequence[torch.Tensor]) -> tuple:
    return () if chroma is None else tuple(_codes(chroma(p.float().div(255.0))) for p in planes)


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
        return (y, *_chroma_codes(self.chroma, planes[1:]))


class YuvLearned(nn.Module):
    """uint8 Y -> the model's learned residual (the bf16 half of a `split()` model)."""

    def __init__(self, learned: nn.Module) -> None:
        super().__init__()
        self.learned = learned

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.learned(y.float().div(255.0))


class YuvTail(nn.Module):
    """uint8 Y, the residual r (and Cb, Cr) -> uint8 planes: the fp32 half of a `split()`
    model (its fixed part, the sum, rounding; the shuffle after rounding, on bytes)."""

    def __init__(self, fixed: nn.Module, shuffle: int, chroma: BicubicChroma | None) -> None:
        super().__init__()
        self.fixed, self.shuffle, self.chroma = fixed, shuffle, chroma

    def forward(self, y: torch.Tensor, r: torch.Tensor, *chroma: torch.Tensor) -> tuple:
        out = F.pixel_shuffle(_codes(r + self.fixed(y.float().div(255.0))), self.shuffle)
        return (out, *_chroma_codes(self.chroma, chroma))


def _examples(shapes: tuple[tuple[int, int], ...]) -> dict[str, torch.Tensor]:
    return {
        n: torch.zeros(1, 1, h, w, dtype=torch.uint8)
        for n, (h, w) in zip("yuv"[: len(shapes)], shapes, strict=True)
    }


def _chroma_net(shapes: tuple[tuple[int, int], ...], scale: int) -> BicubicChroma | None:
    return BicubicChroma(scale) if len(shapes) == 3 else None


def _stem(model: SRModel, shapes: tuple[tuple[int, int], ...]) -> Path:
    sizes = "_".join(f"{h}x{w}" for h, w in shapes)
    return cache_dir() / "onnx" / f"{model_key(model)}-{_VERSION}-{sizes}"


def export_fused(model: SRModel, shapes: tuple[tuple[int, int], ...], scale: int) -> Path:
    """The fused graph for planes of `shapes` ((H, W) of Y, then of Cb and Cr), cached."""
    path = _stem(model, shapes).with_suffix(".onnx")
    if path.is_file():
        return path
    trunk, shuffle = _without_final_shuffle(model, torch.rand(1, 1, *shapes[0]))
    graph = YuvGraph(trunk, shuffle, _chroma_net(shapes, scale))
    inputs = _examples(shapes)
    return export_graph(graph, inputs, [n.upper() for n in inputs], path, _N)


def export_fused_split(
    model: SRModel, shapes: tuple[tuple[int, int], ...], scale: int
) -> tuple[Path, Path]:
    """The two graphs of a `split()` model (`YuvLearned`, `YuvTail`), cached."""
    stem, (learned, fixed) = _stem(model, shapes), model.split()
    inputs = _examples(shapes)
    first = export_graph(
        YuvLearned(learned), {"y": inputs["y"]}, ["R"], Path(f"{stem}-learned.onnx"), _N
    )
    with torch.no_grad():
        residual = learned(inputs["y"].float())
    tail = YuvTail(fixed, model.shuffle.upscale_factor, _chroma_net(shapes, scale))
    names = ["Y", *(n.upper() for n in list(inputs)[1:])]
    second = export_graph(
        tail, {"y": inputs["y"], "r": residual, **inputs}, names, Path(f"{stem}-tail.onnx"), _N
    )
    return first, second


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

    def __init__(self, session: Any, shapes: tuple[tuple[int, int], ...]) -> None:
        self.session = session  # ONNX Runtime's, or `openvino_runtime`'s with its `run`
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
def _fused(
    runtime: str, paths: tuple[Path, ...], shapes: tuple[tuple[int, int], ...], threads: int
) -> FusedYuv:
    """One session per file(s), runtime and thread count in a process, as
    `onnx_runtime._session`."""
    if runtime == "onnx":
        session: Any = ort_session(paths[0], threads)
    elif runtime == "openvino":
        session = ov.OvSession(ov.compiled(paths[0], None, "f32", threads))
    else:
        learned = ov.compiled(paths[0], None, "bf16", threads)
        session = ov.SplitSession(learned, ov.compiled(paths[1], None, "f32", threads))
    return FusedYuv(session, shapes)


def fused_session(
    model: SRModel, selector: RuntimeSelector, shapes: tuple[tuple[int, int], ...], scale: int
) -> FusedYuv | None:
    """The fused session for 8-bit frames of `shapes`, where it applies: a fusable model whose
    runtime for this size is ONNX Runtime fp32 or OpenVINO (`auto` measured it, or it was
    asked for). None otherwise, or when the export or the session fails (the eager path
    still works)."""
    if not fusable(model, shapes, scale):
        return None
    runtime = selector.name_for((1, 1, *shapes[0]))
    if runtime not in FUSED_RUNTIMES:
        return None
    try:
        if runtime == "openvino-bf16":
            paths = export_fused_split(model, shapes, scale)
        else:
            paths = (export_fused(model, shapes, scale),)
        return _fused(runtime, paths, shapes, torch.get_num_threads())
    except Exception as exc:  # any export/runtime failure: the unfused path still works
        log.warning("fused %s graph unavailable (%s); using the separate stages", runtime, exc)
        return None
