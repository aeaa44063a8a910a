"""Chroma planes upscaled by MATLAB bicubic, as one small convolution.

`imresize` handles any size; for the integer factors video needs, the same weights applied
as `fast`'s skip path does (symmetric padding, 2x2 pixel unshuffle, one 3x3 conv to
(2s)^2 phases, pixel shuffle) cost about a third of the CPU time of the general path at
960x540 -> 1920x1080 chroma (docs/BENCHMARKS.md), with the same values (float rounding).
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

from upscaler.models.fast import UNSHUFFLE, bicubic_skip_kernel
from upscaler.models.resample import imresize


@cache
def _kernel(scale: int) -> torch.Tensor:
    return bicubic_skip_kernel(scale).contiguous(memory_format=torch.channels_last)


def _symmetric(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Mirror-pad `dim` with the edge sample repeated (MATLAB 'symmetric')."""
    n = x.shape[dim]
    parts = [x.narrow(dim, 0, before).flip(dim), x, x.narrow(dim, n - after, after).flip(dim)]
    return torch.cat(parts, dim=dim)


def upscale_chroma(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB bicubic of float planes [N, C, h, w] to `size` (out_h, out_w)."""
    n, c, h, w = x.shape
    scale = size[0] // h
    if scale < 2 or size != (h * scale, w * scale) or min(h, w) < 3:
        return imresize(x, size=size)
    flat = x.reshape(n * c, 1, h, w)
    # 2 samples of margin each side for the 3x3 conv on 2x2 blocks, one more to make odd even
    flat = _symmetric(flat, 2, UNSHUFFLE, UNSHUFFLE + h % 2)
    flat = _symmetric(flat, 3, UNSHUFFLE, UNSHUFFLE + w % 2)
    blocks = F.pixel_unshuffle(flat, UNSHUFFLE).contiguous(memory_format=torch.channels_last)
    out = F.pixel_shuffle(F.conv2d(blocks, _kernel(scale).to(x.device, x.dtype)), UNSHUFFLE * scale)
    return out[..., : size[0], : size[1]].reshape(n, c, *size)
