"""`fast`: a real-time luma super-resolution net for CPUs.

The body runs at *half* the input resolution: the Y plane is pixel-unshuffled by 2 (1 -> 4
channels), goes through a few 3x3 conv + ReLU layers, and a final conv emits
`(2 * scale)**2` channels that pixel-shuffle straight to the output size. A fixed linear skip
path (a 3x3 conv on the unshuffled input that computes exact MATLAB bicubic) is added
before the shuffle, so the body only learns the residual detail and training converges fast.
Working at half resolution quarters the pixel count, so 32 channels cost what 16 channels
cost at full resolution, with twice the receptive field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from upscaler.models.base import SRModel
from upscaler.models.registry import register
from upscaler.models.reparam import conv3x3

UNSHUFFLE = 2


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def bicubic_skip_kernel(scale: int, f: int = UNSHUFFLE) -> torch.Tensor:
    """Weights [(f*scale)**2, f*f, 3, 3]: MATLAB bicubic upsampling by `scale` as a conv
    from the pixel-unshuffled (by `f`) input to pixel-shuffle (by `f*scale`) outputs."""
    r = f * scale
    weight = torch.zeros(r * r, f * f, 3, 3, dtype=torch.float64)
    for py in range(r):
        for px in range(r):
            for a in range(f):
                for b in range(f):
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            wy = _cubic((py + 0.5) / scale - 0.5 - (f * dy + a))
                            wx = _cubic((px + 0.5) / scale - 0.5 - (f * dx + b))
                            weight[py * r + px, a * f + b, dy + 1, dx + 1] = wy * wx
    return weight.float()


def symmetric_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad the last two dims by `p` mirroring the edge pixel too (MATLAB 'symmetric')."""
    x = torch.cat([x[..., :p, :].flip(-2), x, x[..., -p:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :p].flip(-1), x, x[..., -p:].flip(-1)], dim=-1)


class FastSR(SRModel):
    """Half-resolution conv body + fixed bicubic skip, pixel-shuffle output."""

    channels = "y"

    def __init__(self, scale: int, width: int = 32, depth: int = 4, reparam: bool = False) -> None:
        super().__init__(scale)
        self.width, self.depth = width, depth
        r = UNSHUFFLE * scale
        self.receptive_field = UNSHUFFLE * (depth + 2)
        self.unshuffle = nn.PixelUnshuffle(UNSHUFFLE)
        layers: list[nn.Module] = [conv3x3(UNSHUFFLE**2, width, reparam), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [conv3x3(width, width, reparam), nn.ReLU()]
        layers.append(conv3x3(width, r * r, reparam))
        self.body = nn.Sequential(*layers)
        # Fixed, not learned: Adam's per-weight steps would only add noise to exact bicubic.
        self.register_buffer("skip", bicubic_skip_kernel(scale), persistent=False)
        with torch.no_grad():
            for conv in self.body[:-1:2]:  # He init keeps the signal alive through the ReLUs
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                conv.bias.zero_()
            self.body[-1].weight.mul_(0.1)
            self.body[-1].bias.zero_()
        self.shuffle = nn.PixelShuffle(r)
        # oneDNN runs these small convs ~1.5x faster in NHWC; load_state_dict and .to(device)
        # keep this layout, and `forward` feeds the body NHWC whatever the caller passes.
        self.body.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % UNSHUFFLE, (-w) % UNSHUFFLE
        if ph or pw:  # odd sizes: pad to even, crop the output back
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        zp = self._unshuffled(x)
        out = self.shuffle(self._learned(zp) + F.conv2d(zp, self.skip)).contiguous()
        if ph or pw:
            out = out[..., : h * self.scale, : w * self.scale]
        return out

    def _unshuffled(self, x: torch.Tensor) -> torch.Tensor:
        return self.unshuffle(symmetric_pad(x, UNSHUFFLE))

    def _learned(self, zp: torch.Tensor) -> torch.Tensor:
        body_in = (zp[..., 1:-1, 1:-1] - 0.5).contiguous(memory_format=torch.channels_last)
        return self.body(body_in)

    def split(self) -> tuple[nn.Module, nn.Module]:
        """(learned, fixed): at even sizes `forward(x) == shuffle(learned(x) + fixed(x))`.
        The learned part outputs a small residual, so lower precision (bf16) costs little
        there; the fixed bicubic and the sum, whose values reach 1.0, need fp32."""
        return _Part(self, learned=True), _Part(self, learned=False)


class _Part(nn.Module):
    """One side of `FastSR.split()` as a module of its own (to export it alone)."""

    def __init__(self, model: FastSR, learned: bool) -> None:
        super().__init__()
        self.model, self.learned = model, learned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zp = self.model._unshuffled(x)
        return self.model._learned(zp) if self.learned else F.conv2d(zp, self.model.skip)


@register(
    "fast-video",
    (2, 4),
    weights={2: "fast-video_x2.pt", 4: "fast-video_x4.pt"},
    description="`fast` fine-tuned on shrunk-then-encoded clips (real codecs): compressed input",
)
@register(
    "fast-real",
    (2,),
    weights={2: "fast-real_x2.pt"},
    description="`fast` trained on degraded LR (blur, noise, JPEG, H.264) for real footage",
)
@register(
    "fast",
    (2, 4),
    weights={2: "fast_x2.pt", 4: "fast_x4.pt"},
    description="real-time CPU net on luma (half-res conv body + bicubic skip), x2/x4",
)
def build_fast(scale: int, width: int = 32, depth: int = 4, reparam: bool = False) -> FastSR:
    """One network, three registry names: clean-LR, degraded-LR (`-real`) and video-degraded
    (`-video`, see `upscaler.train.video`) weights. `reparam` trains every conv with extra
    branches (`upscaler.models.reparam`); checkpoints are saved folded, as the plain net."""
    return FastSR(scale, width, depth, reparam)
