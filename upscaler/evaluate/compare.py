"""Side-by-side comparison picture: the same crop upscaled by several models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from upscaler.engine.image import IMAGE_SUFFIXES, read_image, upscale_image
from upscaler.engine.runner import Upscaler
from upscaler.errors import InputError
from upscaler.media.safe_open import open_media


def read_frame(path: str | Path, index: int = 0) -> np.ndarray:
    """Frame `index` of a video (or the image itself) as [H,W,3] uint8 RGB."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)
    with open_media(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise InputError(f"{path}: has no frame {index}")


def busiest_crop(rgb: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the `size` square with the most detail (gradient energy)."""
    grey = rgb.astype(np.float32).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    h, w = energy.shape
    size = min(size, h, w)
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, size // 4)
    best, corner = -1.0, (0, 0)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            total = (
                integral[top + size, left + size]
                - integral[top, left + size]
                - integral[top + size, left]
                + integral[top, left]
            )
            if total > best:
                best, corner = total, (top, left)
    return corner


def compare_image(
    rgb: np.ndarray,
    models: list[str],
    scale: int,
    crop: int = 96,
    zoom: int = 2,
    device: str = "auto",
    reference: np.ndarray | None = None,
) -> Image.Image:
    """One row of labelled panels: each model's upscale of the busiest `crop` square, then
    the same square of `reference` (the true high-resolution image, `scale` x the input)."""
    if reference is not None and (
        reference.shape[0] < rgb.shape[0] * scale or reference.shape[1] < rgb.shape[1] * scale
    ):
        raise InputError(
            f"reference is {reference.shape[1]}x{reference.shape[0]}, smaller than "
            f"{scale} x the input ({rgb.shape[1] * scale}x{rgb.shape[0] * scale})"
        )
    crop = min(crop, rgb.shape[0], rgb.shape[1])
    top, left = busiest_crop(rgb, crop)
    patch = rgb[top : top + crop, left : left + crop]
    side = crop * scale * zoom
    panels = []
    for name in models:
        out = upscale_image(patch, Upscaler(name, scale, device))
        label = f"{Path(name).stem if name.endswith('.pt') else name} x{scale}"
        panels.append((label, Image.fromarray(out).resize((side, side), Image.NEAREST)))
    if reference is not None:
        ref = reference[top * scale : (top + crop) * scale, left * scale : (left + crop) * scale]
        panels.append(("original", Image.fromarray(ref).resize((side, side), Image.NEAREST)))
    label_h = 24
    sheet = Image.new("RGB", (side * len(panels), side + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, panel) in enumerate(panels):
        sheet.paste(panel, (i * side, label_h))
        draw.text((i * side + 6, 5), name, fill="black")
    return sheet
