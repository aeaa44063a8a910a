"""Chroma planes upscaled by MATLAB bicubic, as one small convolution.

`imresize` handles any size; for the integer factors video needs, the same weights applied
as `fast`'s skip path does (symmetric padding, 2x2 pixel unshuffle, one 3x3 conv to
(2s)^2 phases, pixel shuffle) cost about a third of the CPU time of the general path at
960x540 -> 1920x1080 chroma (docs/BENCHMARKS.md), with the same values (float rounding).
`BicubicChroma` is an `SRModel`, so the engine runs it through the same runtime choice as
the model (ONNX Runtime where that is faster: measured ~1.5-4x at that size).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

from upscaler.models.base import SRModel
from upscaler.models.fast import UNSHUFFLE, bicubic_skip_kernel
from upscaler.models.resample import imresize


def _symmetric(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Mirror-pad `dim` with the edge sample repeated (MATLAB 'symmetric')."""
    n = x.shape[dim]
    parts = [x.narrow(dim, 0, before).flip(dim), x, x.narrow(dim, n - after, after).flip(dim)]
    return torch.cat(parts, dim=dim)


class BicubicChroma(SRModel):
    """[N, 1, h, w] -> [N, 1, s*h, s*w] by MATLAB bicubic (h, w >= 3), as one conv."""

    channels = "y"
    onnx_exportable = True

    def __init__(self, scale: int) -> None:
        super().__init__(scale)
        kernel = bicubic_skip_kernel(scale).contiguous(memory_format=torch.channels_last)
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # 2 samples of margin each side for the 3x3 conv on 2x2 blocks, one more to make odd even
        x = _symmetric(x, 2, UNSHUFFLE, UNSHUFFLE + h % 2)
        x = _symmetric(x, 3, UNSHUFFLE, UNSHUFFLE + w % 2)
        blocks = F.pixel_unshuffle(x, UNSHUFFLE).contiguous(memory_format=torch.channels_last)
        out = F.pixel_shuffle(F.conv2d(blocks, self.kernel), UNSHUFFLE * self.scale)
        return out[..., : h * self.scale, : w * self.scale]


def chroma_factor(shape: tuple[int, ...], size: tuple[int, int]) -> int | None:
    """The integer factor `BicubicChroma` can apply from planes of `shape` to `size`."""
    h, w = shape[-2:]
    factor = size[0] // h
    exact = factor in (2, 3, 4) and size == (h * factor, w * factor)
    return factor if exact and min(h, w) >= 3 else None


@cache
def _eager(factor: int, device: str) -> BicubicChroma:
    return BicubicChroma(factor).to(device)


Forward = Callable[[torch.Tensor], torch.Tensor]


def upscale_chroma(
    x: torch.Tensor, size: tuple[int, int], forward: Forward | None = None
) -> torch.Tensor:
    """MATLAB bicubic of float planes [N, C, h, w] to `size` (out_h, out_w); `forward` is a
    `BicubicChroma` of the right factor (or its ONNX session) when the caller has one."""
    factor = chroma_factor(x.shape, size)
    if factor is None:
        return imresize(x, size=size)
    flat = x.reshape(-1, 1, *x.shape[-2:])
    net = forward or _eager(factor, str(x.device))
    return net(flat.to(torch.float32)).reshape(*x.shape[:2], *size).to(x.dtype)
