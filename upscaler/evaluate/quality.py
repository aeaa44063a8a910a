"""Picture-quality evaluation: PSNR/SSIM-Y of a model over an LR/HR dataset folder.

`evaluate(model, scale, dir)` reads `*_SRF_{scale}_HR.png` / `*_SRF_{scale}_LR.png` pairs
(the SelfExSR layout of ../shared/datasets/Set5/x2). `evaluate_compressed` makes its own LR
from plain HR photos (e.g. Kodak24) by MATLAB bicubic, then encodes it with libx264 at a CRF
through PyAV and decodes it back (exact colour conversion: `train.codec`), measuring
robustness to real video compression.
Images go through the product's own path (`upscaler.engine.image.upscale_image`), on the
CPU runtime asked for (`runtime`; the result's "runtime" names those that ran: an image of
odd size runs eager whatever the runtime).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from upscaler.engine.image import upscale_image
from upscaler.engine.runner import Upscaler
from upscaler.errors import InputError
from upscaler.evaluate.metrics import detail_ratio, modcrop, psnr, ssim
from upscaler.models import load_model
from upscaler.models.base import SRModel
from upscaler.models.resample import imresize
from upscaler.train.codec import CodecChoice, encode_decode


def _load(model: str | SRModel, scale: int) -> SRModel:
    return load_model(model, scale) if isinstance(model, str) else model.eval()


class _Runs:
    """The model on one CPU runtime, and the names of the runtimes its images ran on."""

    def __init__(self, model: SRModel, runtime: str) -> None:
        self.upscaler = Upscaler(model, model.scale, runtime=runtime)
        self.used: set[str] = set()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        channels = 1 if self.upscaler.channels == "y" else 3
        self.used.add(self.upscaler.runtime.name_for((1, channels, *rgb.shape[:2])))
        return upscale_image(rgb, self.upscaler)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def find_pairs(dataset_dir: str | Path, scale: int) -> list[tuple[str, Path, Path]]:
    """(name, lr_path, hr_path) for every pair in the folder (or its `x{scale}` child)."""
    root = Path(dataset_dir)
    if (root / f"x{scale}").is_dir():
        root = root / f"x{scale}"
    pairs = []
    for hr in sorted(root.glob(f"*_SRF_{scale}_HR.png")):
        lr = hr.with_name(hr.name.replace("_HR.png", "_LR.png"))
        if lr.is_file():
            pairs.append((hr.name.split("_SRF_")[0], lr, hr))
    if not pairs:
        raise InputError(f"no *_SRF_{scale}_HR.png/_LR.png pairs in {dataset_dir}")
    return pairs


def _summary(
    model: SRModel, scale: int, rows: list[dict], seconds: float, runs: _Runs
) -> dict[str, Any]:
    meta = getattr(model, "meta", {})
    means = {
        key: sum(r[key] for r in rows) / len(rows)
        for key in ("psnr_y", "ssim_y", "detail_y")
        if key in rows[0]
    }
    return {
        "model": type(model).__name__,
        "scale": scale,
        **means,
        "images": rows,
        "runtime": "+".join(sorted(runs.used)),
        "seconds": round(seconds, 2),
        "weights_steps": meta.get("steps"),
    }


def evaluate(
    model: str | SRModel, scale: int, dataset_dir: str | Path, runtime: str = "auto"
) -> dict[str, Any]:
    """Mean PSNR-Y / SSIM-Y (`scale`-pixel border crop, modcropped HR) over a pair folder."""
    net = _load(model, scale)
    runs, t0, rows = _Runs(net, runtime), time.perf_counter(), []
    for name, lr_path, hr_path in find_pairs(dataset_dir, scale):
        hr = modcrop(_read(hr_path), scale)
        sr = runs(_read(lr_path))[: hr.shape[0], : hr.shape[1]]
        rows.append(
            {
                "image": name,
                "psnr_y": psnr(sr, hr, scale),
                "ssim_y": ssim(sr, hr, scale),
                "detail_y": detail_ratio(sr, hr, scale),
            }
        )
    out = _summary(net, scale, rows, time.perf_counter() - t0, runs)
    out["dataset"] = str(dataset_dir)
    return out


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-bicubic LR of a uint8 RGB image, rounded to uint8 (like the SelfExSR files)."""
    x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).double()
    h, w = hr.shape[:2]
    lr = imresize(x, size=(h // scale, w // scale))
    return lr.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def evaluate_compressed(
    model: str | SRModel,
    scale: int,
    hr_dir: str | Path,
    crf: int | None = 28,
    runtime: str = "auto",
) -> dict[str, Any]:
    """PSNR/SSIM-Y over plain HR images (`*.png`) with bicubic LR, H.264-compressed at `crf`
    (None: clean LR). The HR reference is always the clean original."""
    net = _load(model, scale)
    runs = _Runs(net, runtime)
    files = sorted(Path(hr_dir).glob("*.png"))
    if not files:
        raise InputError(f"no .png images in {hr_dir}")
    t0, rows = time.perf_counter(), []
    for path in files:
        hr = modcrop(_read(path), scale)
        lr = bicubic_lr(hr, scale)
        if crf is not None:
            lr = encode_decode(lr[None], CodecChoice("h264", crf=crf, gop=None, preset="medium"))[0]
        sr = runs(lr)
        rows.append(
            {"image": path.stem, "psnr_y": psnr(sr, hr, scale), "ssim_y": ssim(sr, hr, scale)}
        )
    out = _summary(net, scale, rows, time.perf_counter() - t0, runs)
    out.update(dataset=str(hr_dir), crf=crf)
    if any(math.isinf(r["psnr_y"]) for r in rows):
        out["psnr_y"] = math.inf
    return out
