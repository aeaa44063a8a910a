"""Where a frame's time goes: each stage of the pipeline timed alone, in one process.

Usage: `python -m benchmarks.stages [--model fast] [--size 960x540] [--runtime auto]`.
Stages as `upscale_chunk` runs them (batch 4, 8-bit 4:2:0): decode, the model step
(`upscale_group`: the fused uint8 session where it applies), the model alone on Y floats
inside it, the unfused path it replaced (`to_planes` + `upscale` + `from_planes`), output
frame building, and x264 per preset at the output size; then the whole of it end to end.
CPU milliseconds per frame (the process's CPU time, all threads: steady where wall-clock is
not, on a loaded machine), best of a few rounds. On an idle machine with C cores, end-to-end
fps can reach about C * 1000 / (sum of the stages' CPU ms), if the stages overlap perfectly.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import torch

from upscaler.engine.pipeline import from_planes, to_planes, upscale_chunk, upscale_group
from upscaler.engine.runner import Upscaler
from upscaler.media.frames import decode_frames, planes_to_frame
from upscaler.media.sample import make_sample_clip
from upscaler.media.writer import EncodeSettings


def _best_ms(work: Callable[[], object], frames: int, rounds: int = 5) -> float:
    work()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
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
    """CPU milliseconds per frame of each stage, and of the whole chunk end to end."""
    up = Upscaler(model, 2, "cpu", tile=0, runtime=runtime)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(Path(tmp) / "s.mp4", width, height, 2.0, audio=False)

        def decode_all() -> list:
            with av.open(str(clip)) as container:
                return list(decode_frames(container, "yuv420p"))

        decoded = decode_all()
        rows = {"decode": _best_ms(decode_all, len(decoded), 2)}
        group = decoded[:batch]
        planes = to_planes(group, 8)
        step = "fused" if up.fused(tuple(p.shape for p in group[0].planes), batch, 8) else "unfused"
        rows[f"model step, upscale_group ({step})"] = _best_ms(
            lambda: upscale_group(up, group, "bt709", False, 8), batch
        )
        forward = up.runtime.forward_for(tuple(planes.y.shape))
        rows[f"  model alone on Y floats ({up.runtime.name_for(tuple(planes.y.shape))})"] = (
            _best_ms(lambda: forward(planes.y), batch)
        )
        rows["unfused path: to_planes + upscale + from_planes"] = _best_ms(
            lambda: from_planes(up.upscale(to_planes(group, 8), "bt709", bits=8), 8), batch
        )
        out = upscale_group(up, group, "bt709", False, 8)
        rows["planes_to_frame"] = _best_ms(
            lambda: [planes_to_frame(p, "yuv420p") for p in out], batch
        )
        built = [planes_to_frame(p, "yuv420p") for p in out] * 6
        for preset in ("ultrafast", "superfast", "veryfast"):
            rows[f"x264 {preset}"] = _encode_ms(built, preset)
        started = time.process_time()
        result = upscale_chunk(clip, Path(tmp) / "o.mp4", up, EncodeSettings(preset="auto"), batch)
        cpu = (time.process_time() - started) * 1000 / result.frames
        rows[f"end to end, preset auto (wall ms/frame {1000 / result.fps:.1f})"] = cpu
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--runtime", default="auto")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    load = os.getloadavg()[0]
    with torch.inference_mode():
        rows = stage_times(args.model, width, height, args.runtime)
    print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(f"| stage ({args.model} x2, {args.size}) | CPU ms per frame |\n|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
