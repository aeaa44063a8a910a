"""`esrgan-lite`: the ESRGAN generator (RRDBNet) with fewer, narrower blocks.

Residual-in-residual dense blocks (three 5-conv dense blocks each, residual scaling 0.2),
no batch norm, LeakyReLU; upsampling by nearest x2 + conv per factor of 2 (x2 or x4).
The original has width 64, growth 32, 23 blocks (16.7M params); the defaults here are
width 32, growth 16, 6 blocks (about 1.2M). Size is a constructor parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from upscaler.models.base import SRModel
from upscaler.models.registry import register


class DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing all earlier features; output scaled by 0.2 + input."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, padding=1)
            for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, a=0.2)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs[:-1]:
            feats.append(self.act(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.convs[-1](torch.cat(feats, 1))


class RRDB(nn.Module):
    """Three dense blocks with a scaled residual around them."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(DenseBlock(width, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(SRModel):
    """ESRGAN generator on RGB."""

    channels = "rgb"
    receptive_field = 24

    def __init__(self, scale: int, width: int = 32, blocks: int = 6, growth: int = 16) -> None:
        super().__init__(scale)
        if scale not in (2, 4):
            raise ValueError("esrgan-lite supports x2 and x4")
        self.conv_first = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(width, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(width, width, 3, padding=1)
        self.ups = nn.ModuleList(
            nn.Conv2d(width, width, 3, padding=1) for _ in range(scale.bit_length() - 1)
        )
        self.conv_hr = nn.Conv2d(width, width, 3, padding=1)
        self.conv_last = nn.Conv2d(width, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for up in self.ups:
            feat = self.act(up(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.act(self.conv_hr(feat)))


@register(
    "esrgan-lite-gan",
    (4,),
    weights={4: "esrgan-lite-gan_x4.pt"},
    description="esrgan-lite after its GAN stage: sharper texture, lower PSNR, x4",
)
@register(
    "esrgan-lite",
    (2, 4),
    weights={4: "esrgan-lite_x4.pt"},
    description="simplified ESRGAN (small RRDBNet), RGB, x2/x4; L1-trained (PSNR)",
)
def build_esrgan_lite(scale: int, width: int = 32, blocks: int = 6, growth: int = 16) -> RRDBNet:
    """One network, two registry names: the L1 stage and the GAN stage's weights."""
    return RRDBNet(scale, width, blocks, growth)
