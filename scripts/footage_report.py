"""Pictures for the model cards: a flicker plot and comparison sheets on the dev clips.

    python scripts/footage_report.py runs/footage.json --models fast,fast-video --crf 28

`runs/footage.json` is the output of `upscaler eval --clips ... --json`. Writes
docs/img/flicker_x<s>_crf<c>.png (per-frame PSNR-Y and per-frame-pair tPSNR-Y of each
model on each clip: a jagged line is flicker) and docs/img/footage_<clip>_crf<c>.png (the
busiest crop of the middle frame, compressed at that CRF, upscaled by each model, next to
the original).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `upscaler`
from upscaler.evaluate.compare import compare_image
from upscaler.evaluate.footage import degrade, find_clips, read_clip


def flicker_plot(result: dict, crf: str, path: Path) -> None:
    clips = result["clips"]
    fig, axes = plt.subplots(2, len(clips), figsize=(4 * len(clips), 6), squeeze=False)
    for name, by_crf in result["results"].items():
        for col, row in enumerate(by_crf[crf]["clips"]):
            axes[0][col].plot(row["frame_psnr_y"], marker=".", label=name)
            axes[1][col].plot(row["pair_tpsnr_y"], marker=".", label=name)
            axes[0][col].set_title(f"{row['clip']} (CRF {crf})")
    axes[0][0].set_ylabel("PSNR-Y per frame (dB)")
    axes[1][0].set_ylabel("tPSNR-Y per frame pair (dB)")
    for ax in axes[1]:
        ax.set_xlabel("frame")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--clips", type=Path, default=Path("data/dev_clips"))
    ap.add_argument("--models", default="fast,fast-video")
    ap.add_argument("--crf", type=int, default=28)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args(argv)
    result = json.loads(args.result.read_text())
    scale = result["scale"]
    flicker_plot(result, str(args.crf), args.out / f"flicker_x{scale}_crf{args.crf}.png")
    models = ["bicubic", *args.models.split(",")]
    for path in find_clips(args.clips):
        hr = read_clip(path, result["frames"], 2 * scale)
        lr = degrade(hr, scale, args.crf)
        mid = len(hr) // 2
        sheet = compare_image(lr[mid], models, scale, args.crop, device="cpu", reference=hr[mid])
        sheet.save(args.out / f"footage_{path.stem}_crf{args.crf}.png")
    print(f"wrote {args.out}/flicker_x{scale}_crf{args.crf}.png and footage_*_crf{args.crf}.png")


if __name__ == "__main__":
    main()
