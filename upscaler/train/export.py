"""Ship a trained checkpoint: evaluate it on benchmark folders and record the numbers.

`export(src, dst, benchmarks)` copies the EMA weights of `src` (a `best.pt`) to `dst`
(normally `upscaler/weights/<model>_x<scale>.pt`), adding PSNR/SSIM-Y on each benchmark
folder to `meta.metrics`, so the file says what it measured.
"""

from __future__ import annotations

from pathlib import Path

from upscaler.evaluate.quality import evaluate
from upscaler.models.checkpoint import read_checkpoint, save_checkpoint
from upscaler.models.registry import build_from_checkpoint


def export(src: str | Path, dst: str | Path, benchmarks: dict[str, str | Path]) -> dict:
    """Copy `src` to `dst` with `benchmarks` ({name: folder}) results in meta; return meta."""
    payload = read_checkpoint(src)
    model = build_from_checkpoint(src).eval()
    meta = dict(payload.get("meta", {}))
    metrics = dict(meta.get("metrics", {}))
    for name, folder in benchmarks.items():
        result = evaluate(model, payload["scale"], folder)
        metrics[f"{name}_psnr_y"] = round(result["psnr_y"], 3)
        metrics[f"{name}_ssim_y"] = round(result["ssim_y"], 4)
    meta["metrics"] = metrics
    save_checkpoint(
        dst, payload["arch"], payload["scale"], payload["config"], payload["state_dict"], meta
    )
    return meta
