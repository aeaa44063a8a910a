"""Every CPU target of issue 18 in one command and one process, so ratios share machine state.

Usage: `python -m benchmarks.speed` (defaults: the issue's targets, a few minutes on 2 cores).
For each size (960x540 and 426x240, x2) and model (bicubic, the baseline; `fast`, the default
real-time model): model-only fps (the pipeline's model step, `upscale_group`: 8-bit planes in,
integer planes out, chroma included: the fused uint8 session where it applies), end-to-end
fps (decode + that step + x264, preset `auto`: by output size, of a 10 s clip), their ratio,
and end to end against bicubic. Then live mode: a 25 fps clip of `--live-size` played as if
live through `LiveSession` (headless: no viewer; and once more writing MPEG-TS, as `--out`),
from the session's own counters: % of frames enhanced and the p95 added latency.
Besides fps, the process's CPU ms per frame (all threads): the number that survives other
load on the machine. The load average before and after is printed: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from upscaler.evaluate.bench import BenchResult, run_bench
from upscaler.live.session import LiveOptions, LiveSession
from upscaler.media.sample import make_sample_clip
from upscaler.media.writer import EncodeSettings


def live_run(model: str, size: str, seconds: float, fps: int, out: bool) -> dict[str, Any]:
    """The live session's summary for `seconds` of a `fps` sample clip of `size` played as
    if live (optionally writing MPEG-TS to a file, as `--out` does to a pipe)."""
    width, height = (int(v) for v in size.split("x"))
    threads = torch.get_num_threads()  # the session sets its own; later rows keep theirs
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(Path(tmp) / "live.mp4", width, height, seconds, fps, audio=False)
        ts = str(Path(tmp) / "out.ts") if out else None
        options = LiveOptions(source=str(clip), model=model, duration=seconds, out=ts)
        try:
            return LiveSession(options).run()
        finally:
            torch.set_num_threads(threads)


def _bench_table(results: list[BenchResult]) -> None:
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


def _live_table(rows: list[tuple[str, dict[str, Any]]], fps: int) -> None:
    print(
        "\n| live | model (step) | size | source fps | frames in | enhanced | degraded "
        "| dropped | p95 added latency ms | model tier ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, s in rows:
        share = 100 * s["enhanced"] / max(1, s["frames_in"])
        cost = s["tier_cost_ms"].get(s["model"], 0.0)
        print(
            f"| {label} | {s['model']} x{s['scale']} ({s['model_step']}) | {s['size']} | {fps} "
            f"| {s['frames_in']} | {s['enhanced']} ({share:.0f} %) | {s['degraded']} "
            f"| {s['dropped']} | {s['latency_ms']['p95']:.0f} | {cost:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="bicubic,fast")
    parser.add_argument("--sizes", default="960x540,426x240")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="model-only, per row")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="end to end, per row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--runtimes", default="auto", help="e.g. torch,onnx,onnx-int8,openvino,openvino-bf16"
    )
    parser.add_argument("--preset", default="auto", help="x264 preset (auto: by output size)")
    parser.add_argument("--live-model", default="fast", help="'' skips the live rows")
    parser.add_argument("--live-size", default="960x540")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--live-fps", type=int, default=25)
    args = parser.parse_args()
    started, load = time.perf_counter(), os.getloadavg()
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
            clip_seconds=args.clip_seconds,
            device=args.device,
            settings=EncodeSettings(preset=args.preset),
            runtimes=tuple(args.runtimes.split(",")),
        )
    live = []
    if args.live_model:
        for label, out in (("headless", False), ("+ MPEG-TS out", True)):
            summary = live_run(
                args.live_model, args.live_size, args.live_seconds, args.live_fps, out
            )
            live.append((label, summary))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {load[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; {time.perf_counter() - started:.0f} s in all\n"
    )
    _bench_table(results)
    if live:
        _live_table(live, args.live_fps)


if __name__ == "__main__":
    main()
