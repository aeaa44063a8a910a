"""`compact`: SRVGG-style compact net on RGB (as in Real-ESRGAN's SRVGGNetCompact).

A plain stack of 3x3 conv + PReLU at LR resolution, a last conv to `3 * scale**2` channels,
pixel shuffle, plus a nearest-neighbour upsampled copy of the input, so the body learns only
the residual. Cheap per pixel for its quality on a GPU; too slow for real time on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from upscaler.models.base import SRModel
from upscaler.models.registry import register


class CompactSR(SRModel):
    """conv-PReLU x (depth + 1) -> conv -> pixel shuffle, + nearest upsampling of the input."""

    channels = "rgb"
    receptive_field = 20

    def __init__(self, scale: int, width: int = 64, depth: int = 16) -> None:
        super().__init__(scale)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.PReLU(width)]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width)]
        layers += [nn.Conv2d(width, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        self.receptive_field = depth + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


@register(
    "compact",
    (2, 4),
    weights={2: "compact_x2.pt", 4: "compact_x4.pt"},
    description="SRVGG-style compact RGB net (GPU quality; slow on CPU), x2/x4",
)
def build_compact(scale: int, width: int = 64, depth: int = 16) -> CompactSR:
    return CompactSR(scale, width, depth)
