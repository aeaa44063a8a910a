"""The contract every super-resolution model in the zoo follows.

A model is an `nn.Module` with two class-level facts the engine relies on:

- `scale`: the integer upscale factor (2 or 4).
- `channels`: `"y"` for luma-only models (input [N,1,H,W], output [N,1,sH,sW]; the engine
  upsamples chroma with MATLAB bicubic) or `"rgb"` (input [N,3,H,W] -> [N,3,sH,sW]).

- `window`: how many consecutive frames one output frame is made from (1 for single-frame
  models). A window model of `window = 2r + 1` takes [N, window * C, H, W], the frames
  t-r..t+r stacked on the channel axis, and returns frame t upscaled.

Inputs are float in [0, 1] (Y is BT.601 "studio" luma /255, as in the published protocol);
outputs may overshoot and are clamped by the engine.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import nn

Channels = Literal["y", "rgb"]


class SRModel(nn.Module):
    """Base class: subclasses set `channels` and accept `scale` in `__init__`."""

    channels: ClassVar[Channels] = "rgb"
    #: How far (in LR pixels) one output pixel "sees": the engine's tile overlap.
    receptive_field: ClassVar[int] = 8
    #: Consecutive frames in per output frame (odd); the engine slides a window over video.
    window: ClassVar[int] = 1

    def __init__(self, scale: int) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, not {scale}")
        self.scale = scale

    @property
    def input_channels(self) -> int:
        """Channels of the input tensor: Y or RGB, times the frames of the window."""
        return (1 if self.channels == "y" else 3) * self.window
