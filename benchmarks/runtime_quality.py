"""PSNR-Y of one model through each CPU runtime (eager, ONNX Runtime fp32 and int8, OpenVINO
fp32 and bf16), one run.

Usage: `python -m benchmarks.runtime_quality [--model fast] [--dataset ../shared/datasets/Set5]`.
The published protocol of `upscaler eval` (Y of BT.601 studio range, `scale`-pixel border),
with the model run through `Upscaler(..., runtime=R)` (`upscaler eval --runtime R`), so the
session is the one scored. Evaluation only: the int8 calibration never sees these images
(engine.quantize).
"""

from __future__ import annotations

import argparse

from upscaler.evaluate.quality import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--dataset", default="../shared/datasets/Set5")
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8,openvino,openvino-bf16")
    args = parser.parse_args()
    base = None
    print(f"| {args.model} x{args.scale} runtime | ran as | PSNR-Y (dB) | vs torch |")
    print("|---|---|---|---|")
    for runtime in args.runtimes.split(","):
        result = evaluate(args.model, args.scale, args.dataset, runtime)
        value = result["psnr_y"]
        base = value if base is None else base
        print(f"| {runtime} | {result['runtime']} | {value:.4f} | {value - base:+.4f} |")


if __name__ == "__main__":
    main()
