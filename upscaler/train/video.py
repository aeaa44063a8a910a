"""Video degradations, as video: LR clips made the way real footage is made.

A training sample is a short pseudo-video: a random pan over one HR patch, cut at whole HR
pixels, so consecutive LR frames show the same content at moving sub-pixel phases. Its LR side
goes through one camera-and-delivery chain per clip (optional blur, one resize kernel, sensor
noise drawn anew per frame, 8-bit quantisation) and then one real codec over the whole group
of frames via PyAV: H.264, H.265, MPEG-2 or MPEG-4 Part 2, 4:2:0, at a random CRF or bitrate
and GOP length. So a model sees the frame-to-frame flicker of real compression (I/P/B frames
at different quality), not only single-image JPEG. A fraction of clips stays clean (MATLAB
bicubic, 8-bit), so one blind model learns to handle clean and compressed input alike.

Every random choice comes from one `torch.Generator` and the encoders run single-threaded,
so batches are reproducible and a resumed run draws the same ones, up to x264, whose
lookahead gives small run-to-run differences on tiny clips (docs/TRAINING.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from upscaler.models.resample import imresize
from upscaler.train.codec import FPS, CodecChoice, encode_decode
from upscaler.train.degrade import KERNELS, gaussian_blur

# (PyAV encoder, quality control): "crf" draws a CRF in the range, "bpp" a bitrate in bits
# per pixel per frame at 25 fps (MPEG-2/MPEG-4 Part 2 have no CRF).
CODECS: dict[str, tuple[str, float, float]] = {
    "h264": ("crf", 18, 38),
    "hevc": ("crf", 20, 40),
    "mpeg2video": ("bpp", 0.08, 0.6),
    "mpeg4": ("bpp", 0.06, 0.5),
}


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def _chance(gen: torch.Generator, p: float) -> bool:
    return torch.rand((), generator=gen).item() < p


def random_codec(gen: torch.Generator, width: int, height: int) -> CodecChoice:
    """A codec, its quality and GOP length, drawn from `gen`."""
    names = list(CODECS)
    codec = names[int(torch.randint(len(names), (), generator=gen))]
    kind, lo, hi = CODECS[codec]
    gop = int(torch.randint(4, 31, (), generator=gen))
    if kind == "crf":
        return CodecChoice(codec, crf=round(_uniform(gen, lo, hi)), gop=gop)
    bpp = math.exp(_uniform(gen, math.log(lo), math.log(hi)))
    return CodecChoice(codec, bit_rate=max(8000, int(bpp * width * height * FPS)), gop=gop)


def pan_clip(patch: torch.Tensor, frames: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    """[3,P,P] float HR patch -> [T,3,crop,crop]: a straight pan of up to 2 px a frame each way,
    cut at whole HR pixels. Every frame is then as sharp as the photo (the target is never
    resampled), and the shrink by the scale puts the LR frames at sub-pixel phases of each
    other: the motion a window model learns from. (Sub-pixel pans and zooms sampled with
    bicubic `grid_sample` softened the targets. Measured on the dev clips at CRF 0, `fast-mf`
    trained on whole-pixel pans against sub-pixel ones, same settings: x4 34.97 vs 34.78 dB,
    x2 40.11 vs 40.17 dB; both still below their single-frame start, docs/TRAINING.md.)"""
    p = patch.shape[-1]
    room = p - crop
    vy, vx = (_uniform(gen, -2, 2) for _ in range(2))
    vy, vx = (max(-room / max(frames - 1, 1), min(room / max(frames - 1, 1), v)) for v in (vy, vx))
    t = torch.arange(frames, dtype=torch.float32)
    starts = []
    for v in (vy, vx):
        travel = abs(v) * (frames - 1)
        start = _uniform(gen, 0, room - travel) + max(0.0, -v) * (frames - 1)
        starts.append(torch.round(start + v * t).long().clamp(0, room))
    return torch.stack([patch[:, y : y + crop, x : x + crop] for y, x in zip(*starts, strict=True)])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def degrade_clip(
    hr: torch.Tensor, scale: int, gen: torch.Generator, clean: float = 0.3, camera: bool = True
) -> torch.Tensor:
    """[T,3,H,W] HR frames in [0, 1] -> [T,3,H/s,W/s] 8-bit LR frames of one clip.

    With probability `clean`: MATLAB bicubic only. Otherwise blur (half the clips), a random
    resize kernel, per-frame sensor noise (half), then a real codec over the group of frames
    (nine clips in ten; the rest stay uncompressed but degraded). `camera=False` drops the
    blur, kernel and noise draws: MATLAB bicubic, then always the codec (a shrunk-then-encoded
    upload, as `upscaler eval` makes them)."""
    h, w = hr.shape[-2:]
    size = (h // scale, w // scale)
    if _chance(gen, clean):
        return imresize(hr, size=size).clamp(0, 1).mul(255).round().div(255)
    if camera:
        lr = _camera(hr, size, gen)
        coded = _chance(gen, 0.9)
    else:
        lr, coded = _to_uint8(imresize(hr, size=size)), True
    if coded:
        lr = encode_decode(lr, random_codec(gen, size[1], size[0]))
    return torch.from_numpy(np.ascontiguousarray(lr)).permute(0, 3, 1, 2).float().div(255)


def _camera(hr: torch.Tensor, size: tuple[int, int], gen: torch.Generator) -> np.ndarray:
    """Optional blur, one random resize kernel to `size`, optional per-frame noise, 8-bit."""
    x = hr
    if _chance(gen, 0.5):
        x = gaussian_blur(x, _uniform(gen, 0.3, 1.5))
    kernel = KERNELS[int(torch.randint(len(KERNELS), (), generator=gen))]
    x = imresize(x, size=size, kernel=kernel)
    if _chance(gen, 0.5):
        x = x + (_uniform(gen, 0.5, 4.0) / 255) * torch.randn(x.shape, generator=gen)
    return _to_uint8(x)


def video_lr(
    hr: torch.Tensor, scale: int, gen: torch.Generator, clean: float = 0.3, camera: bool = True
) -> torch.Tensor:
    """`Degrade` for single frames ([B,3,H,W], e.g. the dev crops): each one a 1-frame clip."""
    return torch.cat([degrade_clip(frame[None], scale, gen, clean, camera) for frame in hr])
