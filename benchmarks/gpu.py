"""GPU benchmark: precision, torch.compile, NVENC vs x264, end to end; a table in minutes.

Usage (on a CUDA machine): `python -m benchmarks.gpu [--out gpu.md] [--seconds 4]`.

1. Model only (`Upscaler.upscale` on 1920x1080 4:2:0 sample frames, batch 2, codes rounded on
   the GPU as the pipeline asks): `compact` and `fast` x2 in fp32 / fp16 / bf16, and fp16
   with `torch.compile`.
2. End to end (`upscale_chunk`: decode, upscale, encode) of a 1080p sample clip to 2160p with
   NVENC (when it opens) and with x264 (`UPSCALER_NVENC=0`), fp16.
3. The measured model rates as `cost_data/throughput.json` entries (input Mpx/s).

Every row is measured in this process on this GPU; nothing is assumed. Exits with a message
(status 2) on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import torch

from upscaler.engine.encoder import NVENC, nvenc_available
from upscaler.engine.pipeline import upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.evaluate.bench import sample_planes
from upscaler.media.sample import make_sample_clip
from upscaler.media.writer import EncodeSettings

BATCH = 2


def model_fps(upscaler: Upscaler, size: tuple[int, int], seconds: float) -> float:
    """Frames per second of `upscale` (codes back on the CPU: what the pipeline waits for)."""
    planes = sample_planes(*size, BATCH)
    for _ in range(3):  # warm-up: cuDNN autotuning, torch.compile's first graph
        upscaler.upscale(planes, "bt709", bits=8)
    frames, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        upscaler.upscale(planes, "bt709", bits=8)  # .cpu() at the end synchronises
        frames += BATCH
    return frames / (time.perf_counter() - started)


def end_to_end(
    model: str, clip: Path, nvenc: bool, device: str, batch: int = 4
) -> tuple[float, str]:
    """fps of decode + upscale + encode of `clip`; the encoder that actually ran."""
    os.environ["UPSCALER_NVENC"] = "1" if nvenc else "0"
    upscaler = Upscaler(model, 2, device, tile=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        result = upscale_chunk(clip, out, upscaler, EncodeSettings(preset="auto"), batch)
        with av.open(str(out)) as done:
            video = done.streams.video[0]
            size = f"{video.width}x{video.height}"
            first = bytes(next(done.demux(video)))
    # x264 writes its version and settings into the first frame (an SEI); NVENC does not
    encoder = "libx264" if b"x264 - core" in first else f"not x264 ({video.codec_context.name})"
    return result.fps, f"{encoder} -> {size}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="compact,fast")
    parser.add_argument("--seconds", type=float, default=4.0, help="per model-only row")
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--size", default="1920x1080", help="input size (output is x2)")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA GPU here", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    width, height = (int(v) for v in args.size.split("x"))
    models = [m for m in args.models.split(",") if m]
    lines = [
        f"GPU: {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"NVENC h264 opens: {nvenc_available(NVENC['libx264'])}",
        "",
        f"| model x2, {width}x{height} | precision | compile | model fps | input Mpx/s |",
        "|---|---|---|---|---|",
    ]
    rates: dict[str, float] = {}
    variants = [("fp32", False), ("fp16", False), ("bf16", False)]
    if not args.no_compile:
        variants.append(("fp16", True))
    for model in models:
        for precision, compiled in variants:
            try:
                up = Upscaler(model, 2, args.device, tile=0, precision=precision, compile=compiled)
                fps = model_fps(up, (width, height), args.seconds)
            except Exception as exc:  # one variant failing (e.g. compile) must not end the run
                lines.append(f"| {model} | {precision} | {compiled} | failed: {exc!s:.80} | |")
                continue
            mpx = fps * width * height / 1e6
            rates[model] = max(rates.get(model, 0.0), mpx)
            lines.append(f"| {model} | {precision} | {compiled} | {fps:.1f} | {mpx:.0f} |")
            print(lines[-1], flush=True)
    lines += [
        "",
        f"| model x2, end to end from {width}x{height} (auto precision) | encoder | fps |",
        "|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(
            Path(tmp) / "in.mp4", width, height, args.clip_seconds, fps=30, audio=False
        )
        for model in models:
            for nvenc in (True, False):
                fps, encoder = end_to_end(model, clip, nvenc, args.device)
                lines.append(f"| {model} | {encoder} | {fps:.1f} |")
                print(lines[-1], flush=True)
    entries = [
        {
            "model": model,
            "device": gpu,
            "input_mpx_per_s": round(rate, 1),
            "status": "measured",
            "source": f"benchmarks/gpu.py model-only, best precision, {time.strftime('%Y-%m-%d')}",
        }
        for model, rate in rates.items()
    ]
    lines += ["", "throughput.json entries:", "```json", json.dumps(entries, indent=1), "```"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
