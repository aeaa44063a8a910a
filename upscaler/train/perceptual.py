"""VGG19 feature (perceptual) loss, with weights only from a local file.

These machines cannot download weights, and a randomly initialised VGG gives a loss that
looks like a perceptual loss but is not one. So `PerceptualLoss.from_local` looks for
torchvision's `vgg19-dcbb9e9d.pth` (or any state dict with `features.N.*` keys) at an
explicit path, `$UPSCALER_VGG19`, or torch hub's cache; when none is found it returns None
and warns loudly, and the caller trains without a perceptual term (recorded in the meta).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbb9e9d.pth"
_CFG = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
]  # up to conv5_4, torchvision's layer numbering
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers[:-1])  # conv5_4 output before its ReLU (as in ESRGAN)


def find_vgg19(path: str | None = None) -> Path | None:
    """The first existing candidate: `path`, $UPSCALER_VGG19, torch hub's checkpoint cache."""
    candidates = [path, os.environ.get("UPSCALER_VGG19")]
    candidates.append(str(Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE))
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


class PerceptualLoss(nn.Module):
    """L1 distance between VGG19 conv5_4 features of prediction and target."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    @classmethod
    def from_local(cls, path: str | None = None) -> PerceptualLoss | None:
        """Load pretrained VGG19 from a local file, or warn and return None."""
        found = find_vgg19(path)
        if found is None:
            warnings.warn(
                f"no pretrained VGG19 weights found ({VGG19_FILE} via vgg_weights, "
                "$UPSCALER_VGG19 or the torch hub cache): perceptual loss DISABLED; "
                "the GAN stage trains with pixel + adversarial loss only",
                stacklevel=2,
            )
            return None
        state = torch.load(found, map_location="cpu", weights_only=True)
        features = _vgg19_features()
        own = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
        features.load_state_dict({k: v for k, v in own.items() if k in features.state_dict()})
        log.info("perceptual loss: VGG19 from %s", found)
        return cls(features)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape[1] == 1:  # luma models: grey -> 3 channels
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        a = self.features((pred - self.mean) / self.std)
        b = self.features((target - self.mean) / self.std)
        return F.l1_loss(a, b)
