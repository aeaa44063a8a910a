"""BT.601 studio-range YCbCr <-> RGB on float tensors in [0, 1] (the SR papers' convention).

Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255, in [16/255, 235/255]; the channel
dimension is -3 ([..., 3, H, W]). No rounding: callers round where the protocol does.
"""

from __future__ import annotations

import torch

_FWD = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=torch.float64,
)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x.device, x.dtype), x)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] RGB in [0, 1] -> YCbCr in [0, 1] (studio range)."""
    off = (_OFFSET / 255).to(rgb.device, rgb.dtype).view(3, 1, 1)
    return _mix(rgb, _FWD / 255) + off


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] RGB in [0, 1] -> [..., 1, H, W] studio-range luma in [0, 1]."""
    return rgb_to_ycbcr(rgb)[..., :1, :, :]


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_ycbcr` (not clamped)."""
    off = (_OFFSET / 255).to(ycc.device, ycc.dtype).view(3, 1, 1)
    return _mix(ycc - off, torch.linalg.inv(_FWD / 255))
