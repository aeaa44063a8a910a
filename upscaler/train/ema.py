"""Exponential moving average of model weights (the weights we validate and ship)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`shadow = d * shadow + (1 - d) * weights` after each step; buffers copied.

    `d = min(decay, (1 + step) / (10 + step))`: the warm-up keeps a freshly initialised
    model's random weights from dominating the average for thousands of steps (measured: with
    a flat 0.999, esrgan-lite x4's EMA scored 27.7 dB on the dev set at step 4000, far below
    bicubic's 36.1, while the raw weights were already above it).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in `model`'s weights after optimiser step number `step` (0-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        shadow = self.model.state_dict()
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                shadow[name].lerp_(value.detach(), 1 - decay)
            else:
                shadow[name].copy_(value)
