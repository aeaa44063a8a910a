"""`make demo`: upscale the shipped sample clip with the default model and show what it did.

The sample is a camera move over a photo, rendered at 426x240 (the input) and at 852x480
(the ground truth), so the demo can say how close each model gets: PSNR-Y against the
true 480p frames, for the default model and for bicubic through the same pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.evaluate.compare import compare_image, read_frame
from upscaler.media.sample import make_sample_clip, render_frames
from upscaler.models.registry import DEFAULT_MODEL


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def psnr_against_truth(video: Path, truth: list[np.ndarray]) -> float:
    """Mean PSNR-Y (dB) of a decoded video's frames against the ground-truth frames."""
    scores = []
    with av.open(str(video)) as container:
        for frame, ref in zip(container.decode(video=0), truth, strict=True):
            out = frame.to_ndarray(format="rgb24", src_colorspace="itu709")
            mse = np.mean((_luma(out) - _luma(ref)) ** 2)
            scores.append(10 * np.log10(255**2 / max(mse, 1e-10)))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out/demo", help="where to write the results")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = make_sample_clip(out / "sample_426x240.mp4", 426, 240, args.seconds)
    truth = render_frames(852, 480, round(args.seconds * 30))
    results = {}
    for name in dict.fromkeys([args.model, "bicubic"]):
        dst = out / f"sample_x2_{name}.mp4"
        result = upscale_video(clip, dst, Upscaler(name, 2, "auto"), batch=4)
        results[name] = (dst, result, psnr_against_truth(dst, truth))
    compare = out / "compare.png"
    compare_image(read_frame(clip, 45), list(results), 2, crop=96).save(compare)
    print(f"input:   {clip} (426x240, {round(args.seconds * 30)} frames, with audio)")
    for name, (dst, result, psnr) in results.items():
        print(
            f"{name:<8} -> {dst} ({result.width}x{result.height}, {result.frames} frames, "
            f"{result.fps:.1f} fps end to end, PSNR-Y vs true 480p {psnr:.2f} dB)"
        )
    print(f"compare: {compare}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
