"""Pixel losses."""

from __future__ import annotations

import torch


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1: mean of sqrt(diff^2 + eps^2)."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


PIXEL_LOSSES = {"charbonnier": charbonnier, "l1": l1}
