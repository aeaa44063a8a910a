"""`fast-mf`: the real-time `fast` net reading a window of neighbouring frames.

Early fusion: the Y planes of frames t-r..t+r are stacked as input channels, pixel-unshuffled
together, and only the body's first conv sees more channels; everything after it (and so the
cost, bar that one conv) is `fast`'s. The fixed bicubic skip reads the centre frame only, so
the body learns frame t's residual over its own bicubic, helped by the sub-pixel shifted
copies of the same detail (and the differently compressed versions of it) in the neighbours.

`from_single_frame` maps a `fast` checkpoint into this shape with the neighbours' weights
zero, so training starts exactly at that model and can only learn to use the neighbours.
"""

from __future__ import annotations

import torch
from torch import nn

from upscaler.models.fast import UNSHUFFLE, FastSR, bicubic_skip_kernel
from upscaler.models.registry import register

FIRST_CONV = "body.0.weight"


class FastMultiFrame(FastSR):
    """`FastSR` over 2r+1 stacked luma frames: input [N, 2r+1, H, W] -> frame t [N, 1, sH, sW]."""

    def __init__(self, scale: int, width: int = 32, depth: int = 4, radius: int = 1) -> None:
        super().__init__(scale, width, depth)
        self.radius = radius
        self.window = 2 * radius + 1
        group = UNSHUFFLE**2  # unshuffled channels per frame; frame i owns [i*group, (i+1)*group)
        first = nn.Conv2d(group * self.window, width, 3, padding=1)
        nn.init.kaiming_normal_(first.weight, nonlinearity="relu")
        nn.init.zeros_(first.bias)
        self.body[0] = first.to(memory_format=torch.channels_last)
        # The skip is exact bicubic of the centre frame: zero weights on the neighbours.
        skip = bicubic_skip_kernel(scale)
        wide = skip.new_zeros(skip.shape[0], group * self.window, *skip.shape[2:])
        wide[:, radius * group : (radius + 1) * group] = skip
        self.register_buffer("skip", wide, persistent=False)

    def from_single_frame(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A single-frame `fast` state dict widened to this model: its first conv reads the
        centre frame, the neighbours' weights are zero (the same output as that model)."""
        state = dict(state)
        weight = state[FIRST_CONV]
        group = weight.shape[1]
        wide = weight.new_zeros(weight.shape[0], group * self.window, *weight.shape[2:])
        wide[:, self.radius * group : (self.radius + 1) * group] = weight
        state[FIRST_CONV] = wide
        return state


@register(
    "fast-mf",
    (2, 4),
    description="`fast` over 3 neighbouring frames (early fusion), video-degradation trained",
    window=3,
)
def build_fast_mf(scale: int, width: int = 32, depth: int = 4, radius: int = 1) -> FastMultiFrame:
    return FastMultiFrame(scale, width, depth, radius)
