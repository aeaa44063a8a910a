"""MATLAB-compatible `imresize` in torch (cubic a=-0.5, lanczos2/3, antialiased downscale).

Published super-resolution numbers use MATLAB's bicubic both to make the low-resolution
inputs and as the baseline, so we reproduce it exactly: per axis, each output sample is a
weighted sum of a few input samples (mirror padding at the borders). The weights are
gathered, not multiplied as a dense matrix, so cost is linear in the frame size.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

KERNELS = ("cubic", "lanczos2", "lanczos3", "linear")


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _lanczos(a: int):
    def kernel(x: torch.Tensor) -> torch.Tensor:
        return torch.sinc(x) * torch.sinc(x / a) * (x.abs() < a)

    return kernel


def _linear(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp(min=0)


_KERNEL_FUNCS = {
    "cubic": (_cubic, 4.0),
    "lanczos2": (_lanczos(2), 4.0),
    "lanczos3": (_lanczos(3), 6.0),
    "linear": (_linear, 2.0),
}


@lru_cache(maxsize=64)
def _contributions(
    in_len: int, out_len: int, kernel: str, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices [out, taps] and weights [out, taps] for one axis, as MATLAB computes them."""
    func, width = _KERNEL_FUNCS[kernel]
    scale = out_len / in_len
    if scale < 1 and antialias:
        kernel_fn = lambda x: scale * func(scale * x)  # noqa: E731
        width = width / scale
    else:
        kernel_fn = func
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)
    weights = kernel_fn(u.unsqueeze(1) - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror out-of-range indices (MATLAB's symmetric padding), then go 0-based.
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    indices = mirror[torch.remainder(indices.long() - 1, 2 * in_len)]
    keep = weights.abs().sum(dim=0) > 0
    return indices[:, keep].contiguous(), weights[:, keep].float().contiguous()


def _resize_axis(x: torch.Tensor, out_len: int, dim: int, kernel: str, antialias: bool):
    in_len = x.shape[dim]
    if in_len == out_len:
        return x
    indices, weights = _contributions(in_len, out_len, kernel, antialias)
    indices, weights = indices.to(x.device), weights.to(x.device, x.dtype)
    taps = indices.shape[1]
    gathered = torch.index_select(x, dim, indices.reshape(-1))
    shape = list(x.shape)
    shape[dim : dim + 1] = [out_len, taps]
    gathered = gathered.reshape(shape)
    wshape = [1] * len(shape)
    wshape[dim], wshape[dim + 1] = out_len, taps
    return (gathered * weights.reshape(wshape)).sum(dim=dim + 1)


@lru_cache(maxsize=16)
def _phase_weights(scale: int, kernel: str) -> tuple[torch.Tensor, int]:
    """For an integer upscale: weights [scale, taps] and first offset, such that
    out[scale*k + p] = sum_j weights[p, j] * x[k + offset + j] (away from borders)."""
    n = 32
    indices, weights = _contributions(n, n * scale, kernel, False)
    rows = torch.arange(scale) + (n // 2) * scale
    offsets = indices[rows] - n // 2
    lo, hi = int(offsets.min()), int(offsets.max())
    phase = torch.zeros(scale, hi - lo + 1)
    phase.scatter_add_(1, offsets - lo, weights[rows])
    return phase, lo


def _symmetric_pad(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Pad the last dim by mirroring with the edge sample repeated (MATLAB 'symmetric')."""
    parts = [x]
    if before:
        parts.insert(0, x[..., :before].flip(-1))
    if after:
        parts.append(x[..., -after:].flip(-1))
    return torch.cat(parts, dim=-1)


def _upscale_integer(x: torch.Tensor, scale: int, kernel: str) -> torch.Tensor:
    """Integer upscale of the last two dims: one convolution with scale**2 phase kernels
    (outer products of the 1-D phases) and a pixel shuffle. Equal to the general path."""
    phase, lo = _phase_weights(scale, kernel)
    taps = phase.shape[1]
    before, after = -lo, taps - 1 + lo
    weight = torch.einsum("pi,qj->pqij", phase, phase).reshape(scale * scale, 1, taps, taps)
    shape = x.shape
    flat = _symmetric_pad(x.reshape(-1, 1, *shape[-2:]), before, after)
    flat = _symmetric_pad(flat.transpose(-1, -2), before, after).transpose(-1, -2)
    out = torch.nn.functional.conv2d(flat, weight.to(x.device, x.dtype))
    out = torch.nn.functional.pixel_shuffle(out, scale)
    return out.reshape(*shape[:-2], shape[-2] * scale, shape[-1] * scale)


def imresize(
    x: torch.Tensor,
    size: tuple[int, int] | None = None,
    scale: float | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Resize the last two dims of `x` (float tensor [..., H, W]) like MATLAB's imresize.

    Give either `size` (out_h, out_w) or `scale`. Output is not clamped or rounded.
    """
    if kernel not in _KERNEL_FUNCS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}")
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("give size or scale")
        size = (math.ceil(h * scale), math.ceil(w * scale))
    out_h, out_w = size
    scale_h, scale_w = out_h // h, out_w // w
    fast = (
        scale_h == scale_w > 1
        and (out_h, out_w) == (h * scale_h, w * scale_w)
        and min(h, w) > 8
        and kernel != "linear"
    )
    if fast:
        return _upscale_integer(x, scale_h, kernel)
    # Resize along the axis that shrinks most first (as MATLAB does): fewer samples to carry.
    order = (-2, -1) if out_h / h <= out_w / w else (-1, -2)
    for dim in order:
        target = out_h if dim == -2 else out_w
        x = _resize_axis(x, target, x.dim() + dim, kernel, antialias)
    return x
