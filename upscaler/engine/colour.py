"""Y'CbCr <-> R'G'B' on normalised float tensors, for the matrices video actually uses.

Code values are normalised by 255 * 2**(bits - 8), so studio-range levels (16..235) land on
the same floats at 8 and 10 bits and a luma model sees the same numbers either way.
"""

from __future__ import annotations

import torch

# (Kr, Kb) per matrix; FFmpeg AVColorSpace numbers map onto these in `matrix_name`.
_KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


def matrix_name(avcol_matrix: int, height: int) -> str:
    """The Y'CbCr matrix for an FFmpeg colorspace number; unspecified -> guess by height."""
    if avcol_matrix == 1:
        return "bt709"
    if avcol_matrix in (5, 6):
        return "bt601"
    if avcol_matrix in (9, 10):
        return "bt2020"
    return "bt709" if height >= 720 else "bt601"


def code_scale(bits: int) -> float:
    """Divisor that maps integer code values of `bits` depth to our float domain."""
    return 255.0 * (1 << (bits - 8))


def to_codes(x: torch.Tensor, bits: int, inplace: bool = False) -> torch.Tensor:
    """Normalised floats -> integer code values of `bits` depth: rounded (half to even),
    clamped, as uint8 (8-bit) or int16 (10-bit fits). `inplace` scales `x` itself (the
    caller owns it): no float temporary, which at 1080p batches is a fresh mmap each time."""
    top = (1 << bits) - 1
    dtype = torch.int16 if bits > 8 else torch.uint8
    scaled = x.mul_(code_scale(bits)) if inplace else torch.mul(x, code_scale(bits))
    return scaled.round_().clamp_(0, top).to(dtype)


def ycbcr_to_rgb(
    y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, matrix: str, full_range: bool
) -> torch.Tensor:
    """[N,1,H,W] planes (same size) -> [N,3,H,W] R'G'B' in [0, 1] (not clamped)."""
    kr, kb = _KR_KB[matrix]
    kg = 1 - kr - kb
    if full_range:
        yy, u, v = y, cb - 128 / 255, cr - 128 / 255
    else:
        yy, u, v = (
            (y - 16 / 255) * (255 / 219),
            (cb - 128 / 255) * (255 / 224),
            (cr - 128 / 255) * (255 / 224),
        )
    r = yy + 2 * (1 - kr) * v
    b = yy + 2 * (1 - kb) * u
    g = (yy - kr * r - kb * b) / kg
    return torch.cat([r, g, b], dim=1)


def rgb_to_ycbcr(
    rgb: torch.Tensor, matrix: str, full_range: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[N,3,H,W] R'G'B' in [0, 1] -> (Y, Cb, Cr) planes, each [N,1,H,W]."""
    kr, kb = _KR_KB[matrix]
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    yy = kr * r + (1 - kr - kb) * g + kb * b
    u = (b - yy) / (2 * (1 - kb))
    v = (r - yy) / (2 * (1 - kr))
    if full_range:
        return yy, u + 128 / 255, v + 128 / 255
    return yy * (219 / 255) + 16 / 255, u * (224 / 255) + 128 / 255, v * (224 / 255) + 128 / 255
