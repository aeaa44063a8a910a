"""Training batches from a pre-extracted uint8 HR patch array, made on the fly.

Each batch: random patches, a random crop, one of the 8 flip/rot90 transforms, then the LR
image by MATLAB bicubic (`resample.imresize`) rounded to 8 bits like a saved LR file, or by
a `degrade` function for `*-real` models. All randomness comes from one `torch.Generator`
whose state is checkpointed, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from upscaler.engine.colour import rgb_to_ycbcr
from upscaler.models.resample import imresize


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB in [0, 1] -> [B,1,H,W] BT.601 studio-range luma (the published protocol)."""
    return rgb_to_ycbcr(rgb, "bt601", full_range=False)[0]


Degrade = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


def bicubic_lr(hr: torch.Tensor, scale: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Clean LR: MATLAB bicubic downscale, quantised to 8 bits. [B,3,H,W] in [0, 1]."""
    h, w = hr.shape[-2:]
    lr = imresize(hr, size=(h // scale, w // scale))
    return lr.clamp(0, 1).mul(255).round().div(255)


def load_patches(path: str | Path) -> np.ndarray:
    """The uint8 [N, P, P, 3] patches: a `.npy` file (memory-mapped) or a shard directory
    written by `upscaler dataset build` (read from its memory-mapped shards)."""
    if Path(path).is_dir():
        from upscaler.dataset.shards import ShardedPatches

        return ShardedPatches(path)  # type: ignore[return-value]  # array-like
    arr = np.load(path, mmap_mode="r")
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{path}: expected uint8 [N, H, W, 3], got {arr.dtype} {arr.shape}")
    return arr


class PatchSampler:
    """Draws (lr, hr) training batches; `channels` "y" gives luma, "rgb" gives RGB."""

    def __init__(
        self,
        patches: np.ndarray,
        scale: int,
        crop: int,
        channels: str,
        seed: int = 0,
        degrade: Degrade = bicubic_lr,
    ) -> None:
        if crop % scale or crop > min(patches.shape[1:3]):
            raise ValueError(f"crop {crop} must divide by {scale} and fit {patches.shape[1:3]}")
        self.patches, self.scale, self.crop = patches, scale, crop
        self.channels, self.degrade = channels, degrade
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, ph, pw = self.patches.shape[:3]
        g = self.gen
        idx = torch.randint(n, (batch,), generator=g).numpy()
        ys = torch.randint(ph - self.crop + 1, (batch,), generator=g).tolist()
        xs = torch.randint(pw - self.crop + 1, (batch,), generator=g).tolist()
        tf = torch.randint(8, (batch,), generator=g).tolist()
        crops = []
        for i, y, x, t in zip(idx, ys, xs, tf, strict=True):
            p = torch.from_numpy(np.array(self.patches[i, y : y + self.crop, x : x + self.crop]))
            p = p.permute(2, 0, 1)
            if t & 4:
                p = p.transpose(1, 2)
            crops.append(torch.rot90(p, t & 3, (1, 2)))
        hr = torch.stack(crops).float().div(255)
        lr = self.degrade(hr, self.scale, g)
        if self.channels == "y":
            hr, lr = rgb_to_y(hr), rgb_to_y(lr)
        return lr.contiguous(), hr.contiguous()


def dev_pairs(
    path: str | Path, scale: int, channels: str, degrade: Degrade = bicubic_lr
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Validation (lr, hr) pairs [1,C,H,W] from the dev crops; LR made by `degrade` with a
    fixed seed, so every validation of a run (and of a resumed run) sees the same inputs."""
    gen = torch.Generator().manual_seed(1234)
    pairs = []
    for crop in load_patches(path):
        h, w = (s - s % (2 * scale) for s in crop.shape[:2])
        hr = torch.from_numpy(np.array(crop[:h, :w])).permute(2, 0, 1)[None].float().div(255)
        lr = degrade(hr, scale, gen)
        if channels == "y":
            hr, lr = rgb_to_y(hr), rgb_to_y(lr)
        pairs.append((lr, hr))
    return pairs
