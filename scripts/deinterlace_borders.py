"""What chunk borders cost deinterlacing: bwdif runs per chunk, so a chunk's first and last
frame lack one neighbouring field. Upscales a woven interlaced clip (16 frames, a keyframe
every 4) x2 with `--deinterlace frame` as one chunk and as a chunk per keyframe, and prints the
mean and per-frame PSNR-Y against the progressive render at the top field's time.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/deinterlace_borders.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from tests.formats import FAMILIES, make_family_clip
from upscaler import cli
from upscaler.evaluate.metrics import psnr
from upscaler.media.sample import render_frames


def main(out_dir: Path) -> None:
    base = FAMILIES["ts-h264-interlaced-ac3"]
    gop = {"g": "4", "keyint_min": "4", "sc_threshold": "0"}
    fam = replace(base, frames=16, options={**base.options, **gop})
    src = make_family_clip(out_dir / "woven.ts", fam)
    truth = render_frames(2 * fam.width, 2 * fam.height, 2 * fam.frames)[0::2]
    for seconds in ("10", "0.1"):
        out = out_dir / f"chunks-{seconds}.mkv"
        args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--json",
                "--deinterlace", "frame", "--chunk-seconds", seconds]  # fmt: skip
        if cli.main(args) != 0:
            raise SystemExit(f"upscale failed for --chunk-seconds {seconds}")
        with av.open(str(out)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        scores = [psnr(o, t) for o, t in zip(frames, truth, strict=True)]
        per_frame = " ".join(f"{s:.1f}" for s in scores)
        print(f"--chunk-seconds {seconds}: mean {np.mean(scores):.2f} dB; {per_frame}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
