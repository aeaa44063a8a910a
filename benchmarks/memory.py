"""Peak memory vs video length: streaming must keep it flat.

Upscales the sample clip at 10 s and at 100 s (426x240 -> 852x480) in fresh subprocesses and
reports each one's peak RSS. Usage: `python -m benchmarks.memory [--model bicubic]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from upscaler.media.sample import make_sample_clip

CHILD = """
import json, resource, sys
from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.media.writer import EncodeSettings
src, dst, model = sys.argv[1:4]
r = upscale_video(src, dst, Upscaler(model, 2, "cpu"), EncodeSettings(preset="veryfast"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"frames": r.frames, "fps": round(r.fps, 1), "peak_rss_mb": round(peak, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--lengths", default="10,100", help="clip lengths in seconds")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (float(s) for s in args.lengths.split(",")):
            clip = make_sample_clip(Path(tmp) / f"clip{seconds:g}.mp4", seconds=seconds)
            out = Path(tmp) / f"out{seconds:g}.mp4"
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, str(clip), str(out), args.model],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append({"seconds": seconds, **json.loads(proc.stdout.strip().splitlines()[-1])})
    print(f"machine: {platform.processor() or platform.machine()}, model {args.model}")
    print("| clip length | frames | end-to-end fps | peak RSS (MB) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['seconds']:g} s | {r['frames']} | {r['fps']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
