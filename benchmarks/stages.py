"""Where a frame's time goes: each pipeline stage timed alone, in one process.

Usage: `python -m benchmarks.stages [--model fast] [--size 960x540] [--runtime auto]`.
Stages as `upscale_chunk` runs them (batch 4, 4:2:0): decode, planes -> tensors, the model
on Y, chroma resampling, tensors -> planes, frame building, and x264 encoding per preset.
Milliseconds per frame, best of a few rounds (least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import torch

from upscaler.engine.pipeline import from_planes, to_planes
from upscaler.engine.runner import Upscaler
from upscaler.media.frames import decode_frames, planes_to_frame
from upscaler.media.sample import make_sample_clip
from upscaler.models.resample import imresize


def _best_ms(work: Callable[[], object], frames: int, rounds: int = 5) -> float:
    work()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best * 1000 / frames


def _encode_ms(frames: list[av.VideoFrame], preset: str) -> float:
    def run() -> None:
        with av.open(io.BytesIO(), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height = frames[0].width, frames[0].height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": preset}
            for i, frame in enumerate(frames):
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))

    return _best_ms(run, len(frames), rounds=2)


def stage_times(model: str, width: int, height: int, runtime: str, batch: int = 4) -> dict:
    """Milliseconds per frame of each stage."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(Path(tmp) / "s.mp4", width, height, 1.0, audio=False)

        def decode_all() -> list:
            with av.open(str(clip)) as container:
                return list(decode_frames(container, "yuv420p"))

        decoded = decode_all()
        decode = _best_ms(decode_all, 1, 2)
    frames = len(decoded)
    decode /= frames
    group = decoded[:batch]
    up = Upscaler(model, 2, "cpu", tile=0, runtime=runtime)
    planes = to_planes(group, 8)
    forward = up.runtime.forward_for(tuple(planes.y.shape))
    result = up.upscale(planes, "bt709")
    rows = {
        "decode": decode,
        "to_planes": _best_ms(lambda: to_planes(group, 8), batch),
        f"model on Y ({up.runtime.name_for(tuple(planes.y.shape))})": _best_ms(
            lambda: forward(planes.y), batch
        ),
        "chroma bicubic, imresize (before)": _best_ms(
            lambda: imresize(torch.cat([planes.cb, planes.cr], 1), size=result.cb.shape[-2:]),
            batch,
        ),
        "chroma bicubic, engine (after)": _best_ms(
            lambda: up._chroma(torch.cat([planes.cb, planes.cr], 1), result.cb.shape[-2:]),
            batch,
        ),
        "upscale() in all": _best_ms(lambda: up.upscale(planes, "bt709"), batch),
        "from_planes": _best_ms(lambda: from_planes(result, 8), batch),
    }
    out = from_planes(result, 8)
    rows["planes_to_frame"] = _best_ms(lambda: [planes_to_frame(p, "yuv420p") for p in out], batch)
    built = [planes_to_frame(p, "yuv420p") for p in out] * 3
    for preset in ("ultrafast", "superfast", "veryfast"):
        rows[f"x264 {preset}"] = _encode_ms(built, preset)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--runtime", default="auto")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with torch.inference_mode():
        rows = stage_times(args.model, width, height, args.runtime)
    print(f"| stage ({args.model} x2, {args.size}) | ms per frame |\n|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
