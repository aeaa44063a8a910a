"""Why `openvino-bf16` keeps fp32 outside the learned residual: the fused `fast` graph
through ONNX Runtime, OpenVINO fp32, OpenVINO bf16 on the *whole* graph, and the runtime's
split bf16 (`--runtime openvino-bf16`: residual bf16, the rest fp32), in one process.

Usage: `python -m benchmarks.openvino_probe [--size 960x540] [--quality DIR ...]`. Prints CPU
ms per frame of the fused uint8 session (`engine.fused`, 4-frame batches, 2 threads) through
each, alternating rounds, best and median; how many output codes differ from ONNX Runtime's;
and with `--quality`, PSNR-Y of `fast` x2 on each dataset (the published protocol,
`evaluate.quality`) eager vs whole-graph OpenVINO fp32 / bf16 (for the split runtime:
`upscaler eval --runtime openvino-bf16`). bf16 needs a CPU with AVX512_BF16 or AMX.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
import torch

from upscaler.engine.fused import export_fused, fused_session
from upscaler.engine.onnx_runtime import _OPSET, RuntimeSelector, ort_session
from upscaler.engine.runner import Upscaler
from upscaler.evaluate.bench import sample_frames
from upscaler.models import load_model
from upscaler.models.base import SRModel

PRECISIONS = ("f32", "bf16")


def _openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise SystemExit(
            "openvino_probe: openvino is not installed (pip install -r requirements.txt)"
        ) from None
    return openvino.Core()


def _compile(core: Any, model: Any, precision: str, threads: int) -> Any:
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads}
    return core.compile_model(model, "CPU", config).create_infer_request()


def speed(core: Any, width: int, height: int, rounds: int = 6) -> None:
    """CPU ms per frame of the fused graph through each runtime, and the codes that differ."""
    up = Upscaler("fast", 2, "cpu", runtime="onnx")
    frames = sample_frames(width, height, 4)
    shapes = tuple(p.shape for p in frames[0].planes)
    path = export_fused(up.model, shapes, 2)
    feed = {n: np.stack([f.planes[i][None] for f in frames]) for i, n in enumerate("yuv")}
    session = ort_session(path, 2)
    model = core.read_model(str(path))
    model.reshape({n: list(a.shape) for n, a in feed.items()})
    requests = {p: _compile(core, model, p, 2) for p in PRECISIONS}

    def run_ov(precision: str) -> list[np.ndarray]:
        request = requests[precision]
        request.infer(feed)
        return [request.get_output_tensor(i).data for i in range(len(feed))]

    split = fused_session(up.model, RuntimeSelector(up.model, "openvino-bf16"), shapes, 2)
    assert split is not None
    jobs = {"onnxruntime fp32": lambda: session.run(None, feed)}
    jobs.update({f"openvino {p}": (lambda p=p: run_ov(p)) for p in PRECISIONS})
    jobs["openvino-bf16 (split)"] = lambda: split.session.run(None, feed)
    want = session.run(None, feed)
    for name, job in list(jobs.items())[1:]:
        got = job()
        differ = sum(int((a != b).sum()) for a, b in zip(got, want, strict=True))
        worst = max(
            int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(got, want, strict=True)
        )
        total = sum(a.size for a in want)
        print(f"{name}: {differ} of {total} codes differ, by at most {worst}")
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, job in jobs.items():
            started = time.process_time()
            job()
            times[name].append((time.process_time() - started) * 1000 / 4)
    print(f"\n| runtime ({width}x{height} x2, fused) | CPU ms/frame best | median |")
    print("|---|---|---|")
    for name, ms in times.items():
        print(f"| {name} | {min(ms):.1f} | {statistics.median(ms):.1f} |")


class OpenVinoModel(SRModel):
    """A luma model run by OpenVINO at `precision`, compiled per input shape."""

    channels = "y"
    onnx_exportable = False  # the engine calls this forward as it is

    def __init__(self, core: Any, base: SRModel, precision: str) -> None:
        super().__init__(base.scale)
        self.core, self.base, self.precision = core, base, precision
        self.receptive_field = base.receptive_field
        self._requests: dict[tuple[int, ...], Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self._requests:
            buf = io.BytesIO()
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(self.base, (torch.zeros(shape),), buf, dynamo=False,
                                  input_names=["x"], opset_version=_OPSET)  # fmt: skip
            model = self.core.read_model(buf.getvalue())
            self._requests[shape] = _compile(self.core, model, self.precision, 2)
        request = self._requests[shape]
        request.infer([x.detach().float().numpy()])
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


def quality(core: Any, dataset: str) -> None:
    from upscaler.evaluate.quality import evaluate

    base = load_model("fast", 2)
    eager = evaluate(base, 2, dataset)["psnr_y"]
    row = [f"{dataset}: eager {eager:.4f}"]
    for precision in PRECISIONS:
        value = evaluate(OpenVinoModel(core, base, precision), 2, dataset)["psnr_y"]
        row.append(f"openvino {precision} {value:.4f} ({value - eager:+.4f} dB)")
    print(", ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--quality", nargs="*", default=[], metavar="DIR")
    args = parser.parse_args()
    core = _openvino()
    width, height = (int(v) for v in args.size.split("x"))
    cpu = core.get_property("CPU", "FULL_DEVICE_NAME")
    print(f"load average {os.getloadavg()[0]:.1f}; CPU: {cpu}")
    speed(core, width, height)
    for dataset in args.quality:
        quality(core, dataset)


if __name__ == "__main__":
    main()
