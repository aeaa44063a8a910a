"""Real-footage dev clips: slow camera pans and zooms over held-out photos, lossless.

`python scripts/make_clips.py` reads the photos `scripts/make_data.py` held out for this
(`data/clips/*.png`, never cut into training patches) and writes one FFV1 clip per photo to
`data/dev_clips/` (git-ignored): `--frames` frames of `--size`, the camera panning 1-3 px
and zooming up to 0.3 % per frame, resampled with Lanczos from the full-resolution photo.
These are the HR references of `upscaler eval --clips data/dev_clips --crf 0,23,28`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `upscaler`
from upscaler.evaluate.footage import write_lossless_clip


def pan_frames(
    img: Image.Image, size: tuple[int, int], frames: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 [T,H,W,3]: a straight pan plus a steady zoom over `img`, starting at a view up to
    1.5x the output size (so the photo's own compression is averaged away)."""
    w, h = size
    vx, vy = rng.uniform(1, 3, 2) * rng.choice((-1, 1), 2)  # output px per frame
    zoom = rng.uniform(-0.003, 0.003)
    grow = 1 + abs(zoom) * frames
    f = min(
        1.5,
        *(
            (side - abs(v) * frames * 1.5) / (out * grow)
            for side, v, out in ((img.width, vx, w), (img.height, vy, h))
        ),
    )
    if f < 1:
        raise SystemExit(f"photo {img.size} too small for a {size} clip")
    vx, vy, view_w, view_h = vx * f, vy * f, w * f, h * f
    span_x, span_y = abs(vx) * frames + view_w * grow, abs(vy) * frames + view_h * grow
    x0 = rng.uniform(0, img.width - span_x) + (abs(vx) * frames if vx < 0 else 0)
    y0 = rng.uniform(0, img.height - span_y) + (abs(vy) * frames if vy < 0 else 0)
    out = []
    for t in range(frames):
        s = 1 + zoom * t
        cx, cy = x0 + vx * t + view_w / 2, y0 + vy * t + view_h / 2
        box = (cx - s * view_w / 2, cy - s * view_h / 2, cx + s * view_w / 2, cy + s * view_h / 2)
        out.append(np.asarray(img.resize(size, Image.Resampling.LANCZOS, box=box)))
    return np.stack(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("data/clips"))
    ap.add_argument("--out", type=Path, default=Path("data/dev_clips"))
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    photos = sorted(args.photos.glob("*.png"))
    if not photos:
        raise SystemExit(f"no photos in {args.photos}: run scripts/make_data.py first")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for photo in photos:
        with Image.open(photo) as img:
            clip = pan_frames(img.convert("RGB"), size, args.frames, rng)
        write_lossless_clip(clip, args.out / f"{photo.stem}.mkv")
    print(f"{len(photos)} clips of {args.frames} frames at {args.size} -> {args.out}/")


if __name__ == "__main__":
    main()
