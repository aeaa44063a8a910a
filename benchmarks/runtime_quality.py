"""PSNR-Y of one model through each CPU runtime (eager, ONNX Runtime fp32, int8), one run.

Usage: `python -m benchmarks.runtime_quality [--model fast] [--dataset ../shared/datasets/Set5]`.
The published protocol of `upscaler eval` (Y of BT.601 studio range, `scale`-pixel border),
with the model run through `Upscaler(..., runtime=R)` so the ONNX session is the one scored.
Evaluation only: the int8 calibration never sees these images (engine.quantize).
"""

from __future__ import annotations

import argparse

import numpy as np

from upscaler.engine.image import upscale_image
from upscaler.engine.runner import Upscaler
from upscaler.evaluate.metrics import modcrop, psnr
from upscaler.evaluate.quality import _read, find_pairs


def runtime_psnr(model: str, scale: int, dataset: str, runtime: str) -> tuple[float, str]:
    """Mean PSNR-Y and the runtime that actually ran."""
    upscaler = Upscaler(model, scale, "cpu", tile=0, runtime=runtime)
    values, used = [], set()
    for _name, lr_path, hr_path in find_pairs(dataset, scale):
        hr, lr = modcrop(_read(hr_path), scale), _read(lr_path)
        used.add(upscaler.runtime.name_for((1, 1, *lr.shape[:2])))
        sr = upscale_image(lr, upscaler)[: hr.shape[0], : hr.shape[1]]
        values.append(psnr(sr, hr, scale))
    return float(np.mean(values)), "+".join(sorted(used))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--dataset", default="../shared/datasets/Set5")
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    base = None
    print(f"| {args.model} x{args.scale} runtime | ran as | PSNR-Y (dB) | vs torch |")
    print("|---|---|---|---|")
    for runtime in args.runtimes.split(","):
        value, used = runtime_psnr(args.model, args.scale, args.dataset, runtime)
        base = value if base is None else base
        print(f"| {runtime} | {used} | {value:.4f} | {value - base:+.4f} |")


if __name__ == "__main__":
    main()
