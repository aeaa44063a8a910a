"""PSNR and SSIM on BT.601 luma: the protocol of the published super-resolution tables.

Images are uint8 RGB; Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 in float64 (no
rounding), `shave` border pixels are cropped, SSIM is Wang et al.'s (11x11 Gaussian,
sigma 1.5, K = 0.01/0.03, L = 255, 'valid' filtering) as in MATLAB `ssim_index`.
`detail_ratio` is ours: how much fine detail an output has relative to the original.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """[H,W,3] uint8 RGB -> [H,W] float64 studio-range luma (16..235)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop height and width down to multiples of `scale`."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _luma_pair(sr: np.ndarray, hr: np.ndarray, shave: int) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape != hr.shape:
        raise ValueError(f"size mismatch: {sr.shape} vs {hr.shape}")
    a = rgb_to_y(sr) if sr.ndim == 3 else np.asarray(sr, np.float64)
    b = rgb_to_y(hr) if hr.ndim == 3 else np.asarray(hr, np.float64)
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return a, b


def psnr(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """PSNR-Y in dB between two uint8 RGB images (or two luma arrays)."""
    a, b = _luma_pair(sr, hr, shave)
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _laplacian_energy(y: np.ndarray) -> float:
    centre = 4 * y[1:-1, 1:-1]
    return float(np.abs(centre - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]).mean())


def detail_ratio(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """Mean |Laplacian| of the output's Y over the original's: 1.0 = as much fine detail as
    the original (bicubic x4 on Set5: 0.21). A sharpness measure, not a quality score: noise and
    artefacts raise it too, so read it next to PSNR/SSIM and the comparison image."""
    a, b = _luma_pair(sr, hr, shave)
    return _laplacian_energy(a) / _laplacian_energy(b)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """Mean SSIM on Y between two uint8 RGB images (or two luma arrays)."""
    a, b = _luma_pair(sr, hr, shave)
    x = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(b))[None, None]
    win = _gaussian()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, win), F.conv2d(y, win)
    sxx = F.conv2d(x * x, win) - mu_x**2
    syy = F.conv2d(y * y, win) - mu_y**2
    sxy = F.conv2d(x * y, win) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float((num / den).mean())
