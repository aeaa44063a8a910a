"""GAN stage (ESRGAN recipe): relativistic patch discriminator + perceptual + pixel losses.

Generator loss = `pixel_weight * L1 + perceptual_weight * VGG + gan_weight * RaGAN`; the
discriminator is a spectrally normalised conv net whose output is a map of patch logits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from upscaler.train.perceptual import PerceptualLoss


class PatchDiscriminator(nn.Module):
    """Seven spectrally normalised convs, three stride-2; logits per ~40px patch."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        chans = [in_channels, width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(6):
            stride = 2 if i % 2 else 1
            layers += [
                spectral_norm(
                    nn.Conv2d(chans[i], chans[i + 1], 4 if stride == 2 else 3, stride, 1)
                ),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(spectral_norm(nn.Conv2d(chans[-1], 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _ragan(a: torch.Tensor, b: torch.Tensor, target: float) -> torch.Tensor:
    """Relativistic average logits `a - mean(b)` scored against `target` (0 or 1)."""
    logits = a - b.mean()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class GanStage:
    """Discriminator, its optimiser and the loss terms; checkpointable for resume."""

    def __init__(
        self,
        channels: int,
        device: torch.device,
        lr: float,
        vgg_weights: str | None,
        pixel_weight: float,
        perceptual_weight: float,
        gan_weight: float,
    ) -> None:
        self.disc = PatchDiscriminator(channels).to(device)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.9, 0.99))
        self.perceptual = PerceptualLoss.from_local(vgg_weights)
        if self.perceptual is not None:
            self.perceptual.to(device)
        self.weights = (pixel_weight, perceptual_weight, gan_weight)

    @property
    def note(self) -> str:
        return "VGG19 conv5_4" if self.perceptual is not None else "disabled (no local VGG19)"

    def generator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        w_pix, w_perc, w_gan = self.weights
        self.disc.requires_grad_(False)
        real, fake = self.disc(hr).detach(), self.disc(sr)
        loss = w_pix * F.l1_loss(sr, hr)
        loss = loss + w_gan * (_ragan(real, fake, 0.0) + _ragan(fake, real, 1.0)) / 2
        if self.perceptual is not None:
            loss = loss + w_perc * self.perceptual(sr, hr)
        self.disc.requires_grad_(True)
        return loss

    def discriminator_step(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        real, fake = self.disc(hr), self.disc(sr.detach())
        loss = (_ragan(real, fake, 1.0) + _ragan(fake, real, 0.0)) / 2
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def state_dict(self) -> dict[str, Any]:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
