"""Exponential moving average of model weights (the weights we validate and ship)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`shadow = decay * shadow + (1 - decay) * weights` after each step; buffers copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        shadow = self.model.state_dict()
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                shadow[name].lerp_(value.detach(), 1 - self.decay)
            else:
                shadow[name].copy_(value)
