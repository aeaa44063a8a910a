"""Count multiply-accumulates of a model's convolutions for one input size (forward hooks)."""

from __future__ import annotations

import torch
from torch import nn


def conv_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of every Conv2d (and the functional skip of `fast`, if any) for one forward."""
    total = 0

    def hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            out = model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    skip = getattr(model, "skip", None)
    if isinstance(skip, torch.Tensor):  # fast: fixed bicubic conv done with F.conv2d
        total += out.numel() * skip[0].numel()  # one (s*2)^2-channel conv output per HR pixel
    return total
