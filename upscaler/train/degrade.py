"""Realistic degradations for `*-real` models: blur, resize kernel, noise, JPEG, H.264.

`real_lr(hr, scale, gen)` turns clean HR crops [B,3,H,W] in [0, 1] into LR inputs that look
like real video frames. Every random choice comes from `gen`, and the codecs run
single-threaded, so batches are reproducible (and a resumed run draws the same ones).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from upscaler.models.resample import imresize
from upscaler.train.codec import CodecChoice, encode_decode

KERNELS = ("cubic", "linear", "lanczos3")


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B,C,H,W], reflect padding."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def _from_uint8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div(255)


def jpeg(batch: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of uint8 [B,H,W,3] at `quality` (PIL, 4:2:0)."""
    out = []
    for img in batch:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    return np.stack(out)


def real_lr(hr: torch.Tensor, scale: int, gen: torch.Generator) -> torch.Tensor:
    """Degraded 8-bit LR for a batch of clean HR crops (sizes must divide by 2 * scale)."""
    x = hr
    if torch.rand((), generator=gen).item() < 0.5:
        x = gaussian_blur(x, _uniform(gen, 0.3, 1.5))
    kernel = KERNELS[int(torch.randint(len(KERNELS), (), generator=gen))]
    h, w = x.shape[-2:]
    x = imresize(x, size=(h // scale, w // scale), kernel=kernel)
    if torch.rand((), generator=gen).item() < 0.5:
        sigma = _uniform(gen, 0.5, 4.0) / 255
        x = x + sigma * torch.randn(x.shape, generator=gen)
    lr = _to_uint8(x)
    pick = torch.rand((), generator=gen).item()
    if pick < 0.3:
        lr = jpeg(lr, int(_uniform(gen, 40, 92)))
    elif pick < 0.85:
        crf = int(_uniform(gen, 20, 34))
        lr = encode_decode(lr, CodecChoice("h264", crf=crf, gop=8))
    return _from_uint8(lr)
