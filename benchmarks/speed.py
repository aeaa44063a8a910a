"""Speed of each model, model-only and end to end, measured in one process.

Usage: `python -m benchmarks.speed [--models bicubic,fast] [--sizes 960x540,426x240]`.
Prints a Markdown table for docs/BENCHMARKS.md; bicubic through the same pipeline in the
same run, at the same size, is the baseline each model is compared against. Model-only is
the pipeline's model step (`upscale_group`: 8-bit planes in, integer planes out, chroma
included); end to end adds decoding and x264 (preset `auto`: by output size) of a 10 s clip.
Besides fps, the process's CPU ms per frame (all threads): the number that survives other
load on the machine.
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
    parser.add_argument("--models", default="bicubic,fast")
    parser.add_argument("--sizes", default="960x540,426x240")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runtimes", default="auto", help="e.g. torch,onnx,onnx-int8")
    parser.add_argument("--preset", default="auto", help="x264 preset (auto: by output size)")
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        results += run_bench(
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
        base = next((b for b in results if b.model == "bicubic" and b.size == r.size), None)
        rel = f"{r.end_to_end_fps / base.end_to_end_fps:.2f}" if base else "-"
        print(
            f"| {r.model} x{r.scale} | {r.runtime} | {r.size} | {r.preset} | {r.model_fps:.1f} "
            f"| {r.end_to_end_fps:.1f} "
            f"| {r.efficiency:.2f} | {rel} | {r.model_cpu_ms:.1f} | {r.end_to_end_cpu_ms:.1f} |"
        )


if __name__ == "__main__":
    main()
