"""ONNX Runtime on the CPU: the same models, exported once, run where that is faster.

oneDNN through PyTorch eager pays per-op dispatch and layout costs that dominate small
convolution nets like `fast`; ONNX Runtime fuses conv+ReLU and plans memory once. Which is
faster depends on the model and the machine, so `choose_runtime` measures both at first use
and remembers the answer (`runtime.json` in the cache dir). Exports and the int8 model are
cached there too, keyed by the weights, so a retrained model never reuses a stale file.

Exports have dynamic batch, height and width, traced at an even size: they are used for even
frame sizes only (odd sizes, rare in video, stay on eager, which pads them itself).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import math
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from upscaler.models.base import SRModel

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
_OPSET = 17
_LOCK = threading.Lock()
Forward = Callable[[torch.Tensor], torch.Tensor]


def cache_dir() -> Path:
    """Where exports and runtime choices live: $UPSCALER_CACHE_DIR, else ~/.cache/upscaler."""
    base = os.environ.get("UPSCALER_CACHE_DIR") or Path.home() / ".cache" / "upscaler"
    return Path(base)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def model_key(model: SRModel) -> str:
    """Hash of the architecture, scale and every weight: names exports and choices."""
    digest = hashlib.sha256(f"{type(model).__name__}/{model.scale}/{_OPSET}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def exportable(model: SRModel) -> bool:
    """Our own architectures export; community nets (spandrel) stay on eager."""
    return getattr(model, "onnx_exportable", type(model).__module__.startswith("upscaler."))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def export_onnx(model: SRModel, path: Path | None = None) -> Path:
    """The model as ONNX (fp32, dynamic N/H/W), exported once into the cache."""
    path = path or cache_dir() / "onnx" / f"{model_key(model)}.onnx"
    if path.is_file():
        return path
    example = torch.rand(1, model.input_channels, 64, 64)
    axes = {0: "n", 2: "h", 3: "w"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the odd-size branch
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            opset_version=_OPSET,
            dynamic_axes={"x": axes, "y": axes},
        )
    _atomic_write(path, buf.getvalue())
    return path


def ort_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session for `path`: all graph optimisations, `threads` intra-op
    threads (default torch's), and no busy-waiting between calls (spinning threads would
    take the encoder's cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtForward:
    """An ONNX Runtime session as a torch forward: float32 in, float32 out, no copies."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = path
        self.session = ort_session(path, threads)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        data = x.detach().to(torch.float32).contiguous().numpy()
        (out,) = self.session.run(["y"], {"x": data})
        return torch.from_numpy(out)


@functools.lru_cache(maxsize=16)
def _session(path: Path, threads: int) -> OrtForward:
    """One session per exported file and thread count in a process (sessions are
    thread-safe): an upscaler made per image, as the eval paths do, does not rebuild it."""
    return OrtForward(path, threads)


def _time(forward: Forward, x: torch.Tensor, rounds: int) -> float:
    """Best-of-`rounds` seconds per call (the best is the least disturbed by other load)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        forward(x)
        best = min(best, time.perf_counter() - started)
    return best


def _machine() -> str:
    return f"{platform.machine()}/{os.cpu_count()}cpu/{torch.get_num_threads()}t"


def _choices_path() -> Path:
    return cache_dir() / "runtime.json"


def _load_choices() -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(_choices_path().read_text())
    return {}


def size_class(shape: tuple[int, ...]) -> str:
    """'c1/px2^19' for [N, 1, 540, 960]: channels and log2 of the frame area, rounded."""
    return f"c{shape[1]}/px2^{round(math.log2(shape[-2] * shape[-1]))}"


def choose_runtime(
    model: SRModel, shape: tuple[int, ...], eager: Forward, onnx: Forward, rounds: int = 3
) -> str:
    """'onnx' or 'torch' for `model` at inputs like `shape` on this machine: measured once
    (both, same input, alternating), then read from the cache. The answer is kept per
    channel count and frame area to within a factor of 2 (`size_class`), so a folder of
    photos of many sizes is not measured once per size."""
    key = f"{model_key(model)}/{size_class(shape)}/{_machine()}"
    with _LOCK:
        choices = _load_choices()
        if key in choices:
            return choices[key]["runtime"]
        x = torch.rand(shape)
        with torch.inference_mode():
            # warm-up (allocations, kernel choice); a slow model is timed once, not `rounds`
            slow = _time(eager, x, 1) > 1.0
            _time(onnx, x, 1)
            t_torch = t_onnx = float("inf")
            for _ in range(1 if slow else rounds):  # alternating: both see the same load
                t_torch = min(t_torch, _time(eager, x, 1))
                t_onnx = min(t_onnx, _time(onnx, x, 1))
        runtime = "onnx" if t_onnx < t_torch else "torch"
        choices[key] = {
            "runtime": runtime,
            "torch_ms": round(t_torch * 1000, 2),
            "onnx_ms": round(t_onnx * 1000, 2),
        }
        with contextlib.suppress(OSError):
            _atomic_write(_choices_path(), json.dumps(choices, indent=1).encode())
    log.debug("runtime for %s: %s", key, choices[key])
    return runtime


#: Below this many input pixels per frame the choice is not worth an export and a measurement
#: (tests, thumbnails): eager is used.
MIN_PIXELS = 100_000


class RuntimeSelector:
    """Per input shape: the eager model or its ONNX Runtime session, as `runtime` asks.

    'auto' measures both once per (weights, shape, machine); 'onnx' / 'onnx-int8' force the
    session. Whenever ONNX Runtime cannot be used (not installed, odd sizes, an export or
    session error) the eager model runs instead, with a warning for a forced runtime.
    """

    def __init__(self, model: SRModel, runtime: str = "auto") -> None:
        if runtime not in RUNTIMES:
            from upscaler.errors import ModelError

            raise ModelError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
        self.model = model
        self.runtime = runtime
        self._session: Forward | None = None
        self._failed = runtime == "torch" or not exportable(model)
        self._chosen: dict[tuple[int, ...], Forward] = {}

    def _ort(self) -> Forward | None:
        if self._session is None and not self._failed:
            try:
                if not onnxruntime_available():
                    raise ImportError("onnxruntime is not installed")
                if self.runtime == "onnx-int8":
                    from upscaler.engine.quantize import quantize_int8

                    path = quantize_int8(self.model)
                else:
                    path = export_onnx(self.model)
                self._session = _session(path, torch.get_num_threads())
            except Exception as exc:  # any export/runtime failure: eager still works
                self._failed = True
                level = logging.DEBUG if self.runtime == "auto" else logging.WARNING
                log.log(level, "ONNX Runtime unavailable for this model (%s); using PyTorch", exc)
        return self._session

    def forward_for(self, shape: tuple[int, ...]) -> Forward:
        """The forward to use for inputs of `shape` ([N, C, H, W])."""
        key = tuple(shape[1:])  # the batch size does not change the choice
        if key not in self._chosen:
            self._chosen[key] = self._pick(tuple(shape))
        return self._chosen[key]

    def _pick(self, shape: tuple[int, ...]) -> Forward:
        h, w = shape[-2:]
        if self._failed or h % 2 or w % 2:
            return self.model
        if self.runtime == "auto" and h * w < MIN_PIXELS:
            return self.model
        session = self._ort()
        if session is None:
            return self.model
        if self.runtime != "auto":
            return session
        return (
            session
            if choose_runtime(self.model, shape, self.model, session) == "onnx"
            else (self.model)
        )

    def name_for(self, shape: tuple[int, ...]) -> str:
        """'torch' or the ONNX runtime the forward for `shape` uses (for reports)."""
        return (
            "torch"
            if self.forward_for(shape) is self.model
            else self.runtime.replace("auto", "onnx")
        )
