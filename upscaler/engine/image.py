"""Still images through the same engine: RGB uint8 in, RGB uint8 out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from upscaler.engine.colour import rgb_to_ycbcr, ycbcr_to_rgb
from upscaler.engine.runner import Planes, Upscaler
from upscaler.errors import InputError, LimitExceededError
from upscaler.media.limits import Limits
from upscaler.media.safe_open import check_local_file
from upscaler.media.writer import atomic_output
from upscaler.models.base import SRModel

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def upscale_image(rgb: np.ndarray, model: Upscaler | SRModel) -> np.ndarray:
    """Upscale an [H,W,3] uint8 RGB array; luma models follow the published protocol
    (BT.601 studio-range Y'CbCr, model on Y, bicubic chroma)."""
    upscaler = model if isinstance(model, Upscaler) else Upscaler(model, model.scale)
    x = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1)[None] / 255
    y, cb, cr = rgb_to_ycbcr(x, "bt601", full_range=False)
    out = upscaler.upscale(Planes(y, cb, cr), "bt601", full_range=False)
    assert out.cb is not None and out.cr is not None
    rgb_out = ycbcr_to_rgb(out.y, out.cb, out.cr, "bt601", full_range=False)
    return rgb_out[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


def read_image(path: str | Path, limits: Limits | None = None) -> np.ndarray:
    """Read an image file as [H,W,3] uint8 RGB, refusing non-images and oversized ones."""
    limits = limits or Limits.from_env()
    path = check_local_file(path, limits)
    try:
        with Image.open(path) as img:
            if img.width * img.height > limits.max_input_pixels:
                raise LimitExceededError(
                    f"{path}: {img.width}x{img.height} is over the limit of "
                    f"{limits.max_input_pixels} pixels"
                )
            return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as exc:  # declared size far beyond any limit
        raise LimitExceededError(f"{path}: {exc}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None


def upscale_image_file(src: str | Path, dst: str | Path, upscaler: Upscaler) -> tuple[int, int]:
    """Upscale one image file to a PNG at `dst` (atomically); return the output size."""
    out = upscale_image(read_image(src), upscaler)
    with atomic_output(Path(dst)) as tmp:
        Image.fromarray(out).save(tmp, format="PNG")
    return out.shape[1], out.shape[0]
