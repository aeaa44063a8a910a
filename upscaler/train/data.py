"""Training batches from a pre-extracted uint8 HR patch array, made on the fly.

Each batch: random patches, a random crop, one of the 8 flip/rot90 transforms, then the LR
image by MATLAB bicubic (`resample.imresize`) rounded to 8 bits like a saved LR file, or by
a `degrade` function for `*-real` models. With a `clip` function instead, each batch is made
of short pseudo-video clips (`train.video`): a pan over a whole patch, degraded and encoded as
video. For a window model (`window` = 2r+1 frames in, see `models.base.SRModel.window`) the
LR side of each sample is the clip's frames t-r..t+r stacked on the channel axis and the HR
side is frame t. All randomness comes from one `torch.Generator` whose state is checkpointed, so a
resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from upscaler.engine.colour import rgb_to_ycbcr
from upscaler.models.resample import imresize
from upscaler.train.video import pan_clip


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB in [0, 1] -> [B,1,H,W] BT.601 studio-range luma (the published protocol)."""
    return rgb_to_ycbcr(rgb, "bt601", full_range=False)[0]


Degrade = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
ClipDegrade = Degrade  # [T,3,H,W] frames of one clip -> their LR frames
CLIP_FRAMES = 6  # frames encoded per training clip (GOP effects: I, P and B frames)
KEEP = 3  # frames of each clip used in a batch (data cost vs variety: 6 clips per 16)


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
        clip: ClipDegrade | None = None,
        window: int = 1,
    ) -> None:
        if crop % scale or crop > min(patches.shape[1:3]):
            raise ValueError(f"crop {crop} must divide by {scale} and fit {patches.shape[1:3]}")
        if window > 1 and clip is None:
            raise ValueError("a multi-frame model trains on clips: use degradation=video or codec")
        self.patches, self.scale, self.crop = patches, scale, crop
        self.channels, self.degrade, self.clip = channels, degrade, clip
        self.radius = window // 2
        self.gen = torch.Generator().manual_seed(seed)

    def _patch(self, i: int, y: int, x: int, t: int, side: int) -> torch.Tensor:
        """One [3,side,side] uint8 crop of patch `i` under flip/rot90 transform `t`."""
        p = torch.from_numpy(np.array(self.patches[i, y : y + side, x : x + side]))
        p = p.permute(2, 0, 1)
        if t & 4:
            p = p.transpose(1, 2)
        return torch.rot90(p, t & 3, (1, 2))

    def _to_channels(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.channels == "y":
            hr, lr = rgb_to_y(hr), rgb_to_y(lr)
        return lr.contiguous(), hr.contiguous()

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.clip is not None:
            return self._sample_clips(batch)
        n, ph, pw = self.patches.shape[:3]
        g = self.gen
        idx = torch.randint(n, (batch,), generator=g).numpy()
        ys = torch.randint(ph - self.crop + 1, (batch,), generator=g).tolist()
        xs = torch.randint(pw - self.crop + 1, (batch,), generator=g).tolist()
        tf = torch.randint(8, (batch,), generator=g).tolist()
        crops = [
            self._patch(i, y, x, t, self.crop) for i, y, x, t in zip(idx, ys, xs, tf, strict=True)
        ]
        hr = torch.stack(crops).float().div(255)
        return self._to_channels(self.degrade(hr, self.scale, g), hr)

    def _sample_clips(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch` frames, `KEEP` from each of `batch / KEEP` pseudo-video clips (a pan over
        one whole patch, degraded and encoded as a clip by `self.clip`); for a window model,
        centre frames whose whole window lies inside the clip, with that window."""
        g, n, side = self.gen, self.patches.shape[0], min(self.patches.shape[1:3])
        r = self.radius
        frames = max(CLIP_FRAMES, KEEP + 2 * r)
        lrs, hrs = [], []
        for _ in range(-(-batch // KEEP)):
            i = int(torch.randint(n, (), generator=g))
            t = int(torch.randint(8, (), generator=g))
            patch = self._patch(i, 0, 0, t, side).float().div(255)
            hr = pan_clip(patch, frames, self.crop, g)
            lr, hr = self._to_channels(self.clip(hr, self.scale, g), hr)
            keep = torch.randperm(frames - 2 * r, generator=g)[:KEEP] + r
            lrs.append(stack_window(lr, keep, r))
            hrs.append(hr[keep])
        return torch.cat(lrs)[:batch], torch.cat(hrs)[:batch]


def stack_window(frames: torch.Tensor, centres: torch.Tensor, radius: int) -> torch.Tensor:
    """[T,C,H,W] frames -> [len(centres), (2r+1)*C, H, W]: each centre's frames t-r..t+r on
    the channel axis (frame-major, the order window models read)."""
    return torch.cat([frames[centres + d] for d in range(-radius, radius + 1)], dim=1)


def centre_frame(lr: torch.Tensor, window: int, channels: str) -> torch.Tensor:
    """The centre frame's channels of a window model's input (the frame being upscaled)."""
    c = 1 if channels == "y" else 3
    return lr[:, window // 2 * c : (window // 2 + 1) * c]


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


def dev_clip_pairs(
    path: str | Path, scale: int, channels: str, clip: ClipDegrade, window: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Validation pairs for a window model: a `window`-frame pan over each dev crop, degraded
    as a clip by `clip` (fixed seed); (the stacked window [1,window*C,h,w], HR centre frame)."""
    gen = torch.Generator().manual_seed(1234)
    r, pairs = window // 2, []
    for crop in load_patches(path):
        side = min(crop.shape[:2])
        patch = torch.from_numpy(np.array(crop[:side, :side])).permute(2, 0, 1).float().div(255)
        hr = pan_clip(patch, window, side - side // 5 // (2 * scale) * (2 * scale), gen)
        lr = clip(hr, scale, gen)
        if channels == "y":
            hr, lr = rgb_to_y(hr), rgb_to_y(lr)
        pairs.append((stack_window(lr, torch.tensor([r]), r), hr[r : r + 1]))
    return pairs
