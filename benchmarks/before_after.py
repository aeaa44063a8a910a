"""Before/after harness: the same measurement on two checkouts (an old one lacks new APIs).

Usage, from the root of each checkout (e.g. `git worktree add /tmp/before e8c8f90`):
`PYTHONPATH=. python benchmarks/before_after.py LABEL 960x540 PRESET` prints one JSON line
per model (bicubic, fast): model-only (`upscale` + `from_planes`, 4-frame 4:2:0 batches)
and end-to-end (`upscale_chunk` of a 4 s sample clip) fps, and the process's CPU ms per
frame (all threads: steady where wall-clock fps are not, on a shared machine). Alternate the
two checkouts in one shell loop so that both see the same load.
"""

from __future__ import annotations

import inspect
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from upscaler.engine import pipeline
from upscaler.engine.pipeline import from_planes, upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.evaluate import bench
from upscaler.media.sample import make_sample_clip
from upscaler.media.writer import EncodeSettings


def measure(label: str, model: str, clip: Path, size: tuple[int, int], preset: str) -> dict:
    up = Upscaler(model, 2, "cpu")
    sample = getattr(bench, "sample_planes", None) or bench._sample_planes  # old name
    planes = sample(*size, 4)
    codes = "bits" in inspect.signature(Upscaler.upscale).parameters  # new: codes inside
    group = getattr(pipeline, "upscale_group", None)  # newer: the pipeline's own model step
    frames = bench.sample_frames(*size, 4) if group is not None else []

    def once() -> None:
        if group is not None:
            group(up, frames, "bt709", False, 8)
        elif codes:
            from_planes(up.upscale(planes, "bt709", bits=8), 8)
        else:
            from_planes(up.upscale(planes, "bt709"), 8)

    with torch.inference_mode():
        once()
        done, started, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < 5:
            once()
            done += 4
        model_fps = done / (time.perf_counter() - started)
        model_cpu = (time.process_time() - cpu) * 1000 / done
    cpu = time.process_time()
    result = upscale_chunk(clip, clip.with_name("out.mp4"), up, EncodeSettings(preset=preset), 4)
    runtime = up.runtime.name_for((4, 1, size[1], size[0])) if hasattr(up, "runtime") else "torch"
    return {
        "code": label,
        "model": model,
        "size": f"{size[0]}x{size[1]}",
        "preset": preset,
        "runtime": runtime,
        "model_fps": round(model_fps, 2),
        "model_cpu_ms": round(model_cpu, 1),
        "e2e_fps": round(result.fps, 2),
        "e2e_cpu_ms": round((time.process_time() - cpu) * 1000 / result.frames, 1),
        "e2e_over_model": round(result.fps / model_fps, 2),
    }


def main() -> None:
    label, size_text, preset = sys.argv[1:4]
    width, height = (int(v) for v in size_text.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(Path(tmp) / "c.mp4", width, height, 4.0, audio=False)
        for model in ("bicubic", "fast"):
            print(json.dumps(measure(label, model, clip, (width, height), preset)), flush=True)


if __name__ == "__main__":
    main()
