"""Re-parameterisable convolutions: trained wide, folded into one plain conv for inference.

A 3x3 conv trained as the sum of three linear branches (3x3, 1x1, and a 1x1 expansion followed
by a 3x3) computes a function one 3x3 conv can compute too, but the optimiser sees a
different, over-parameterised landscape (ACNet, RepVGG, ECBSR). Without batch norm every
branch folds exactly, so the shipped net is the plain one: same speed, same file format.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REPARAM = "reparam"  # the model_config key that turns the branches on
EXPAND = 2  # channels of the expansion branch, per output channel (ECBSR's depth multiplier)


class RepConv3x3(nn.Conv2d):
    """A padded 3x3 conv (its own `weight`/`bias`) plus 1x1 and 1x1->3x3 branches.

    The branches start at zero, so a plain conv's `weight`/`bias` load unchanged and training
    starts exactly at that model. The expansion has no bias: a bias there would meet the 3x3's
    zero padding and not fold exactly at the borders."""

    BRANCHES = ("point", "expand", "squeeze")  # folded away: not in the shipped net

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)
        self.point = nn.Conv2d(cin, cout, 1)
        self.expand = nn.Conv2d(cin, EXPAND * cout, 1, bias=False)
        self.squeeze = nn.Conv2d(EXPAND * cout, cout, 3, padding=1, bias=False)
        for zero in (self.point.weight, self.point.bias, self.squeeze.weight):
            nn.init.zeros_(zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.point(x) + self.squeeze(self.expand(x))

    @torch.no_grad()
    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the one 3x3 conv equal to all branches together."""
        chain = torch.einsum("oekl,ei->oikl", self.squeeze.weight, self.expand.weight[:, :, 0, 0])
        weight = self.weight + F.pad(self.point.weight, (1, 1, 1, 1)) + chain
        return weight, self.bias + self.point.bias


def conv3x3(cin: int, cout: int, reparam: bool) -> nn.Conv2d:
    """A padded 3x3 conv, re-parameterisable for training when `reparam`."""
    return RepConv3x3(cin, cout) if reparam else nn.Conv2d(cin, cout, 3, padding=1)


def fold(
    model: nn.Module, config: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, model config) of the plain model equal to `model`: every `RepConv3x3`
    folded into its own `weight`/`bias`, and `reparam` dropped from the config."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if isinstance(module, RepConv3x3):
            for branch in RepConv3x3.BRANCHES:
                for key in [k for k in state if k.startswith(f"{name}.{branch}.")]:
                    del state[key]
            state[f"{name}.weight"], state[f"{name}.bias"] = module.folded()
    return state, {k: v for k, v in config.items() if k != REPARAM}


def folded_parameter_count(model: nn.Module) -> int:
    """Parameters of the plain net `fold` makes of `model` (what ships, what inference runs)."""
    branches = [
        getattr(module, branch)
        for module in model.modules()
        if isinstance(module, RepConv3x3)
        for branch in RepConv3x3.BRANCHES
    ]
    folded = sum(p.numel() for branch in branches for p in branch.parameters())
    return sum(p.numel() for p in model.parameters()) - folded
