"""ONNX Runtime on the CPU: the same models, exported once, run where that is faster.

oneDNN through PyTorch eager pays per-op dispatch and layout costs that dominate small
convolution nets like `fast`; ONNX Runtime fuses conv+ReLU and plans memory once. Which is
faster depends on the model and the machine, so `choose_runtime` measures eager, ONNX Runtime
and OpenVINO (`engine.openvino_runtime`, which runs the same exports) at first use and
remembers the answer (`runtime.json` in the cache dir). Exports and the int8 model are
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
from torch import nn

from upscaler.engine import openvino_runtime as ov
from upscaler.models.base import SRModel

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")
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


def export_graph(
    graph: nn.Module,
    inputs: dict[str, torch.Tensor],
    outputs: list[str],
    path: Path,
    axes: dict[int, str],
) -> Path:
    """`graph` traced on `inputs` (name -> example) as ONNX at `path`, once; `axes` are the
    dynamic dimensions of every input and output."""
    if path.is_file():
        return path
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the odd-size branches
        torch.onnx.export(
            graph.eval(),
            tuple(inputs.values()),
            buf,
            dynamo=False,
            input_names=list(inputs),
            output_names=outputs,
            opset_version=_OPSET,
            dynamic_axes={n: axes for n in [*inputs, *outputs]},
        )
    _atomic_write(path, buf.getvalue())
    return path


_NHW = {0: "n", 2: "h", 3: "w"}


def export_onnx(model: SRModel, path: Path | None = None) -> Path:
    """The model as ONNX (fp32, dynamic N/H/W), exported once into the cache."""
    path = path or cache_dir() / "onnx" / f"{model_key(model)}.onnx"
    return export_graph(
        model, {"x": torch.rand(1, model.input_channels, 64, 64)}, ["y"], path, _NHW
    )


def export_split(model: SRModel) -> tuple[Path, Path]:
    """A `split()` model as two ONNX graphs (dynamic N/H/W): x -> its learned residual r, and
    (x, r) -> the output (`openvino_runtime.SplitTail`)."""
    stem = cache_dir() / "onnx" / model_key(model)
    learned, fixed = model.split()
    x = torch.rand(1, model.input_channels, 64, 64)
    first = export_graph(learned, {"x": x}, ["r"], Path(f"{stem}-learned.onnx"), _NHW)
    with torch.no_grad():
        inputs = {"x": x, "r": learned(x)}
    tail = ov.SplitTail(fixed, model.shuffle)
    return first, export_graph(tail, inputs, ["y"], Path(f"{stem}-tail.onnx"), _NHW)


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
    model: SRModel, shape: tuple[int, ...], candidates: dict[str, Forward], rounds: int = 3
) -> str:
    """The fastest of `candidates` (runtime name -> forward) for `model` at inputs like
    `shape` on this machine: measured once (all on the same input, alternating), then read
    from the cache. The answer is kept per channel count and frame area to within a factor
    of 2 (`size_class`), so a folder of photos of many sizes is not measured once per size,
    and per set of candidates (installing OpenVINO measures again)."""
    names = "+".join(candidates)
    key = f"{model_key(model)}/{size_class(shape)}/{_machine()}/{names}"
    with _LOCK:
        choices = _load_choices()
        if key in choices:
            return choices[key]["runtime"]
        x = torch.rand(shape)
        with torch.inference_mode():
            # warm-up (allocations, kernel choice, OpenVINO's compile for this size); a slow
            # model (even its fastest runtime over a second) is timed once, not `rounds`
            slow = min(_time(forward, x, 1) for forward in candidates.values()) > 1.0
            best = dict.fromkeys(candidates, float("inf"))
            for _ in range(1 if slow else rounds):  # alternating: all see the same load
                for name, forward in candidates.items():
                    best[name] = min(best[name], _time(forward, x, 1))
        runtime = min(best, key=best.__getitem__)
        choices[key] = {
            "runtime": runtime,
            **{f"{n}_ms": round(t * 1000, 3) for n, t in best.items()},
        }
        with contextlib.suppress(OSError):
            _atomic_write(_choices_path(), json.dumps(choices, indent=1).encode())
    log.debug("runtime for %s: %s", key, choices[key])
    return runtime


#: Below this many input pixels per frame the choice is not worth an export and a measurement
#: (tests, thumbnails): eager is used.
MIN_PIXELS = 100_000


def auto_bf16(model: SRModel) -> bool:
    """Whether `auto` may pick `openvino-bf16` for `model`: where it keeps fp32 outside the
    learned residual (`split()`) on a CPU with bf16. Measured cost for `fast` x2, Set5
    PSNR-Y: -0.006 dB (the issue's bound: 0.05; docs/BENCHMARKS.md)."""
    return ov.bf16_unavailable(model) is None


class RuntimeSelector:
    """Per input shape: the eager model or an exported runtime of it, as `runtime` asks.

    'auto' measures eager, ONNX Runtime and OpenVINO (fp32; bf16 where `auto_bf16`) once per
    (weights, shape, machine) and keeps the fastest; the other names force one. Whenever a
    runtime cannot be used (not installed, odd sizes, an export or session error) the eager
    model runs instead, with a warning for a forced runtime.
    """

    def __init__(self, model: SRModel, runtime: str = "auto") -> None:
        if runtime not in RUNTIMES:
            from upscaler.errors import ModelError

            raise ModelError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
        self.model = model
        self.runtime = runtime
        self._backends: dict[str, Forward | None] = {}  # by runtime name; None: unusable
        self._off = runtime == "torch" or not exportable(model)
        self._chosen: dict[tuple[int, ...], tuple[str, Forward]] = {}

    def _backend(self, name: str) -> Forward | None:
        """The forward of runtime `name`, built once; None when it cannot run here."""
        if name not in self._backends:
            try:
                self._backends[name] = self._build(name)
            except Exception as exc:  # any export/runtime failure: eager still works
                self._backends[name] = None
                level = logging.DEBUG if self.runtime == "auto" else logging.WARNING
                log.log(level, "%s unavailable for this model (%s); using PyTorch", name, exc)
        return self._backends[name]

    def _build(self, name: str) -> Forward:
        if name in ov.PRECISIONS:
            if not ov.openvino_available():
                raise ImportError("openvino is not installed")
            return ov.ov_forward(self.model, name, export_onnx, export_split)
        if not onnxruntime_available():
            raise ImportError("onnxruntime is not installed")
        if name == "onnx-int8":
            from upscaler.engine.quantize import quantize_int8

            return _session(quantize_int8(self.model), torch.get_num_threads())
        return _session(export_onnx(self.model), torch.get_num_threads())

    def forward_for(self, shape: tuple[int, ...]) -> Forward:
        """The forward to use for inputs of `shape` ([N, C, H, W])."""
        return self._entry(shape)[1]

    def name_for(self, shape: tuple[int, ...]) -> str:
        """The runtime the forward for `shape` uses (for reports): 'torch', 'onnx',
        'onnx-int8', 'openvino' or 'openvino-bf16'."""
        return self._entry(shape)[0]

    def used(self) -> list[str]:
        """The runtimes chosen so far, one per input shape seen (for reports)."""
        return sorted({name for name, _ in self._chosen.values()})

    def _entry(self, shape: tuple[int, ...]) -> tuple[str, Forward]:
        key = tuple(shape[1:])  # the batch size does not change the choice
        if key not in self._chosen:
            self._chosen[key] = self._pick(tuple(shape))
        return self._chosen[key]

    def _pick(self, shape: tuple[int, ...]) -> tuple[str, Forward]:
        h, w = shape[-2:]
        eager = ("torch", self.model)
        if self._off or h % 2 or w % 2:
            return eager
        if self.runtime != "auto":
            forward = self._backend(self.runtime)
            return eager if forward is None else (_name(self.runtime, forward), forward)
        if h * w < MIN_PIXELS:
            return eager
        names = ["onnx", "openvino"] + (["openvino-bf16"] if self._bf16_ok() else [])
        candidates: dict[str, Forward] = {"torch": self.model}
        for name in names:
            forward = self._backend(name)
            if forward is not None:
                candidates[name] = forward
        if len(candidates) == 1:
            return eager
        name = choose_runtime(self.model, shape, candidates)
        return name, candidates[name]

    def _bf16_ok(self) -> bool:
        try:
            return ov.openvino_available() and auto_bf16(self.model)
        except Exception:  # a broken OpenVINO install: the other runtimes still work
            return False


def _name(runtime: str, forward: Forward) -> str:
    """What a forced runtime really runs: 'openvino-bf16' may have fallen back to fp32."""
    if isinstance(forward, ov.OvForward):
        return "openvino-bf16" if forward.precision == "bf16" else "openvino"
    return runtime
