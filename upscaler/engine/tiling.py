"""Run a model over large frames in overlapping tiles, seamlessly.

Each tile is cut with a margin of at least the model's receptive field; only the tile's
centre is kept, so every output pixel is computed from the same neighbourhood as in an
untiled run and there are no seams to blend away (differences are float rounding only).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]


def tiled_forward(
    forward: Forward, x: torch.Tensor, scale: int, tile: int, margin: int
) -> torch.Tensor:
    """Apply `forward` (x [N,C,H,W] -> [N,C',sH,sW]) tile by tile; `tile` is in input pixels."""
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return forward(x)
    out: torch.Tensor | None = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            t1, l1 = min(bottom + margin, h), min(right + margin, w)
            y = forward(x[:, :, t0:t1, l0:l1])
            if out is None:
                out = y.new_empty(n, y.shape[1], h * scale, w * scale)
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = y[
                :,
                :,
                (top - t0) * scale : (bottom - t0) * scale,
                (left - l0) * scale : (right - l0) * scale,
            ]
    assert out is not None
    return out


def auto_tile(
    height: int, width: int, batch: int, scale: int, budget_bytes: int, bytes_per_pixel: int
) -> int:
    """Largest square tile (multiple of 64, >= 64) whose working set fits `budget_bytes`;
    0 (no tiling) when the whole batch fits."""
    need = height * width * batch * bytes_per_pixel * scale * scale
    if need <= budget_bytes:
        return 0
    side = int((budget_bytes / (batch * bytes_per_pixel * scale * scale)) ** 0.5)
    return max(64, side // 64 * 64)
