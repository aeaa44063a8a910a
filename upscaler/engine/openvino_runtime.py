"""OpenVINO on the CPU: the exported graphs run by Intel's CPU plugin, fp32 or bf16.

On this project's small conv nets OpenVINO's CPU plugin matches or beats ONNX Runtime at fp32
(same outputs within a code). On CPUs with bf16 units (AVX512_BF16, AMX), bf16 convolutions
run about twice as fast. But bf16 keeps only 8 significant bits: a value near 1.0 (code 255)
is stored to about a code, so a model *output* in bf16 loses ~0.05 dB PSNR. A model that can
say which part of it is a small learned residual (`split()`, e.g. `fast`: body + fixed
bicubic skip) runs only that part in bf16. The fixed part, the add, the rounding to codes and
chroma stay fp32, in a second graph. Set5 then loses 0.006 dB instead of 0.049, and `fast` at
1080p takes ~25 % less CPU than fp32 (docs/BENCHMARKS.md). A model without `split()`, or a
CPU without bf16, runs fp32 instead.

Compiled models live in memory only (one per graph, frame size, precision and thread count):
no OpenVINO cache directory, nothing written. Only the runtime (`openvino.Core`) is used, never
the conversion tools, which are the only part that imports `openvino_telemetry`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

#: runtime name -> OpenVINO inference precision
PRECISIONS = {"openvino": "f32", "openvino-bf16": "bf16"}


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def core() -> Any:
    import openvino

    return openvino.Core()


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 natively (OpenVINO's CPU plugin says so)."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def splittable(model: nn.Module) -> bool:
    """Whether `model` names its learned residual (`split()`), so bf16 can stay inside it."""
    return callable(getattr(model, "split", None))


@functools.lru_cache(maxsize=32)
def compiled(
    path: Path, shapes: tuple[tuple[int, ...], ...] | None, precision: str, threads: int
) -> Any:
    """`path` (ONNX) compiled for the CPU: inputs reshaped to `shapes` (-1: dynamic; None:
    as exported), `threads` inference threads (the engine's budget), no thread pinning (the
    encoder and other processes share the cores)."""
    model = core().read_model(str(path))
    if shapes is not None:
        names = (port.get_any_name() for port in model.inputs)
        model.reshape({name: list(s) for name, s in zip(names, shapes, strict=True)})
    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
    }
    return core().compile_model(model, "CPU", config)


class OvSession:
    """A compiled model with ONNX Runtime's `run` signature (what `FusedYuv` calls): named
    numpy inputs in, fresh numpy outputs back (the request's own buffers are reused)."""

    def __init__(self, model: Any) -> None:
        self.request = model.create_infer_request()
        self._lock = threading.Lock()

    def run(self, _names: None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            out = self.request.infer(dict(feed), share_inputs=True, share_outputs=True)
            return [np.array(a) for a in out.values()]


class SplitSession:
    """Two compiled graphs: `learned` (bf16) maps the first input to the residual, `tail`
    (fp32) takes the inputs and that residual (input "r") to the outputs. The residual is
    handed over without a copy."""

    def __init__(self, learned: Any, tail: Any) -> None:
        self._first = learned.input(0).get_any_name()
        self.learned = learned.create_infer_request()
        self.tail = tail.create_infer_request()
        self._lock = threading.Lock()

    def run(self, _names: None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            first = {self._first: feed[self._first]}
            (residual,) = self.learned.infer(first, share_inputs=True, share_outputs=True).values()
            out = self.tail.infer({**feed, "r": residual}, share_inputs=True, share_outputs=True)
            return [np.array(a) for a in out.values()]


class SplitTail(nn.Module):
    """(x, r) -> shuffle(r + fixed(x)): the fp32 half of a `split()` model."""

    def __init__(self, fixed: nn.Module, shuffle: nn.Module) -> None:
        super().__init__()
        self.fixed, self.shuffle = fixed, shuffle

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.shuffle(r + self.fixed(x))


def _dims(shape: Any) -> tuple[int, ...]:
    """An OpenVINO partial shape as reshape wants it: -1 for a dynamic dimension."""
    return tuple(d.get_length() if d.is_static else -1 for d in shape)


class OvForward:
    """An OpenVINO-compiled export as a torch forward (float32 in and out), compiled per
    input height and width (dynamic batch), like the per-size ONNX Runtime sessions.
    Two `paths`: a `split()` model, its learned graph in bf16 and its tail in fp32."""

    def __init__(self, paths: tuple[Path, ...], precision: str, threads: int) -> None:
        self.paths, self.precision, self.threads = paths, precision, threads
        self._sessions: dict[tuple[int, ...], OvSession | SplitSession] = {}

    def _session(self, shape: Sequence[int]) -> OvSession | SplitSession:
        key = tuple(shape[1:])
        if key not in self._sessions:
            first = compiled(self.paths[0], ((-1, *key),), self.precision, self.threads)
            if len(self.paths) == 1:
                self._sessions[key] = OvSession(first)
            else:
                shapes = ((-1, *key), _dims(first.output(0).get_partial_shape()))
                tail = compiled(self.paths[1], shapes, "f32", self.threads)
                self._sessions[key] = SplitSession(first, tail)
        return self._sessions[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        data = x.detach().to(torch.float32).contiguous().numpy()
        (out,) = self._session(data.shape).run(None, {"x": data})
        return torch.from_numpy(out)


def ov_forward(
    model: nn.Module,
    runtime: str,
    export: Callable[[Any], Path],
    export_split: Callable[[Any], tuple[Path, Path]],
) -> OvForward:
    """The OpenVINO forward for `runtime` ('openvino' or 'openvino-bf16'): bf16 only on a CPU
    with bf16 and a `split()` model (the learned part in bf16, the rest fp32), else fp32 with
    a warning saying why. `export` / `export_split` write the ONNX file(s) (cached)."""
    threads = torch.get_num_threads()
    if runtime == "openvino-bf16":
        why = bf16_unavailable(model)
        if why is None:
            return OvForward(export_split(model), "bf16", threads)
        log.warning("openvino-bf16: %s; running OpenVINO fp32", why)
    return OvForward((export(model),), "f32", threads)


def bf16_unavailable(model: nn.Module) -> str | None:
    """Why `model` cannot run `openvino-bf16` here, or None when it can."""
    if not bf16_supported():
        return "this CPU has no bf16 support (OpenVINO reports no BF16 capability)"
    if not splittable(model):
        return f"{type(model).__name__} has no split() of its learned residual"
    return None
