"""Still images through the same engine: RGB uint8 in, RGB uint8 out."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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


def upscale_image(
    rgb: np.ndarray, model: Upscaler | SRModel, window: np.ndarray | None = None
) -> np.ndarray:
    """Upscale an [H,W,3] uint8 RGB array; luma models follow the published protocol
    (BT.601 studio-range Y'CbCr, model on Y, bicubic chroma). A multi-frame model reads the
    luma of `window` ([2r+1,H,W,3], the frames around `rgb`; without it, `rgb` repeated)."""
    upscaler = model if isinstance(model, Upscaler) else Upscaler(model, model.scale)
    x = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1)[None] / 255
    y, cb, cr = rgb_to_ycbcr(x, "bt601", full_range=False)
    if window is not None:
        frames = torch.tensor(window, dtype=torch.float32).permute(0, 3, 1, 2) / 255
        y = rgb_to_ycbcr(frames, "bt601", full_range=False)[0].permute(1, 0, 2, 3)
    out = upscaler.upscale(Planes(y, cb, cr), "bt601", full_range=False)
    assert out.cb is not None and out.cr is not None
    rgb_out = ycbcr_to_rgb(out.y, out.cb, out.cr, "bt601", full_range=False)
    return rgb_out[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


@contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """Image.open, which reads only the header (decoding waits for `load`), with Pillow's
    failures as ours. Pillow's decompression-bomb guard stays as a backstop: its error (over
    2 x Image.MAX_IMAGE_PIXELS) is a LimitExceededError; its warning (over MAX_IMAGE_PIXELS,
    printed as a multi-line warning) is silenced, because our own pixel limit decides."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except Image.DecompressionBombError as exc:  # declared size far beyond any limit
        raise LimitExceededError(
            f"{path}: refused by Pillow's decompression-bomb guard: {exc}"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None


def _check_size(path: Path, width: int, height: int, scale: int, limits: Limits) -> None:
    if width * height > limits.max_input_pixels:
        raise LimitExceededError(
            f"{path}: {width}x{height} is over the limit of {limits.max_input_pixels} pixels"
        )
    if width * height * scale * scale > limits.max_output_pixels:
        raise LimitExceededError(
            f"{path}: the x{scale} output {width * scale}x{height * scale} is over the limit "
            f"of {limits.max_output_pixels} pixels; use a smaller --scale"
        )


def check_image(path: str | Path, scale: int = 1, limits: Limits | None = None) -> tuple[int, int]:
    """(width, height) from the image's header, refusing non-images and sizes over the input
    pixel limit or, at `scale`, the output pixel limit. Nothing is decoded."""
    limits = limits or Limits.from_env()
    path = check_local_file(path, limits)
    with _open_image(path) as img:
        _check_size(path, img.width, img.height, scale, limits)
        return img.width, img.height


def image_files(directory: Path, limits: Limits | None = None) -> list[Path]:
    """The images (by suffix) in `directory`, sorted; over `limits.max_images` is refused
    as soon as the listing passes the limit."""
    limits = limits or Limits.from_env()
    files: list[Path] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append(path)
                if len(files) > limits.max_images:
                    raise LimitExceededError(
                        f"{directory}: over the limit of {limits.max_images} images"
                    )
    return sorted(files)


def read_image(path: str | Path, limits: Limits | None = None, scale: int = 1) -> np.ndarray:
    """Read an image file as [H,W,3] uint8 RGB, refusing non-images and oversized ones (from
    the header, before decoding)."""
    limits = limits or Limits.from_env()
    path = check_local_file(path, limits)
    with _open_image(path) as img:
        _check_size(path, img.width, img.height, scale, limits)
        return np.asarray(img.convert("RGB"))


def upscale_image_file(src: str | Path, dst: str | Path, upscaler: Upscaler) -> tuple[int, int]:
    """Upscale one image file to a PNG at `dst` (atomically); return the output size."""
    out = upscale_image(read_image(src, scale=upscaler.scale), upscaler)
    with atomic_output(Path(dst)) as tmp:
        Image.fromarray(out).save(tmp, format="PNG")
    return out.shape[1], out.shape[0]
