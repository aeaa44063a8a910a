"""Speed of each model, model-only and end to end, measured in one process.

Usage: `python -m benchmarks.speed [--models bicubic,lanczos,fast] [--size 426x240]`.
Prints a Markdown table for docs/BENCHMARKS.md; bicubic through the same pipeline in the
same run is the baseline each model is compared against.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from upscaler.evaluate.bench import run_bench
from upscaler.media.writer import EncodeSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="bicubic,lanczos,fast")
    parser.add_argument("--size", default="426x240")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runtimes", default="auto", help="e.g. torch,onnx,onnx-int8")
    parser.add_argument("--preset", default="auto", help="x264 preset (auto: by output size)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    results = run_bench(
        args.models.split(","),
        args.scale,
        width,
        height,
        args.batch,
        args.seconds,
        clip_seconds=10.0,
        device=args.device,
        settings=EncodeSettings(preset=args.preset),
        runtimes=tuple(args.runtimes.split(",")),
    )
    base = next((r for r in results if r.model == "bicubic"), None)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        "| model | runtime | size | x264 preset | model-only fps | end-to-end fps "
        "| e2e / model | e2e vs bicubic | model CPU ms/frame | e2e CPU ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rel = f"{r.end_to_end_fps / base.end_to_end_fps:.2f}" if base else "-"
        print(
            f"| {r.model} x{r.scale} | {r.runtime} | {r.size} | {r.preset} | {r.model_fps:.1f} "
            f"| {r.end_to_end_fps:.1f} "
            f"| {r.efficiency:.2f} | {rel} | {r.model_cpu_ms:.1f} | {r.end_to_end_cpu_ms:.1f} |"
        )


if __name__ == "__main__":
    main()
