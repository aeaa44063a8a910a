"""Video degradations, as video: LR clips made the way real footage is made.

A training sample is a short pseudo-video: a random pan (and sometimes a slow zoom) over one
HR patch, so consecutive frames show the same content at moving sub-pixel phases. Its LR side
goes through one camera-and-delivery chain per clip (optional blur, one resize kernel, sensor
noise drawn anew per frame, 8-bit quantisation) and then one real codec over the whole group
of frames via PyAV: H.264, H.265, MPEG-2 or MPEG-4 Part 2, 4:2:0, at a random CRF or bitrate
and GOP length. So a model sees the frame-to-frame flicker of real compression (I/P/B frames
at different quality), not only single-image JPEG. A fraction of clips stays clean (MATLAB
bicubic, 8-bit), so one blind model learns to handle clean and compressed input alike.

Every random choice comes from one `torch.Generator` and the encoders run single-threaded,
so batches are reproducible and a resumed run draws the same ones.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import av
import numpy as np
import torch
import torch.nn.functional as F

from upscaler.models.resample import imresize
from upscaler.train.degrade import KERNELS, gaussian_blur

# (PyAV encoder, quality control): "crf" draws a CRF in the range, "bpp" a bitrate in bits
# per pixel per frame at 25 fps (MPEG-2/MPEG-4 Part 2 have no CRF).
CODECS: dict[str, tuple[str, float, float]] = {
    "h264": ("crf", 18, 38),
    "hevc": ("crf", 20, 40),
    "mpeg2video": ("bpp", 0.08, 0.6),
    "mpeg4": ("bpp", 0.06, 0.5),
}
_ENCODER = {"h264": "libx264", "hevc": "libx265", "mpeg2video": "mpeg2video", "mpeg4": "mpeg4"}
FPS = 25
MIN_CODED = 64  # x265 corrupts its heap on frames under 64 pixels a side (measured at 48)


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def _chance(gen: torch.Generator, p: float) -> bool:
    return torch.rand((), generator=gen).item() < p


@dataclass(frozen=True)
class CodecChoice:
    """One encode: codec name, CRF or bitrate, GOP length (frames between keyframes)."""

    codec: str
    crf: int | None = None
    bit_rate: int | None = None
    gop: int = 12

    def options(self) -> dict[str, str]:
        opts = {"g": str(self.gop), "threads": "1"}
        if self.codec == "h264":
            opts.update(crf=str(self.crf), preset="veryfast")
        elif self.codec == "hevc":
            opts.update(
                crf=str(self.crf),
                preset="ultrafast",
                **{"x265-params": "log-level=none:pools=none:frame-threads=1"},
            )
        return opts


def encode_decode(frames: np.ndarray, choice: CodecChoice) -> np.ndarray:
    """uint8 [T,H,W,3] RGB -> one clip in `choice`'s codec (yuv420p, BT.601) -> decoded RGB.

    Frames are edge-padded to even sizes (4:2:0) of at least `MIN_CODED` and cropped back."""
    h, w = frames.shape[1:3]
    ph, pw = max(MIN_CODED, h + h % 2) - h, max(MIN_CODED, w + w % 2) - w
    pad = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream(_ENCODER[choice.codec], rate=FPS)
        stream.width, stream.height, stream.pix_fmt = pad.shape[2], pad.shape[1], "yuv420p"
        if choice.bit_rate:
            stream.bit_rate = choice.bit_rate
        stream.options = choice.options()
        for img in pad:
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p", dst_colorspace="itu601")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        back = [f.to_ndarray(format="rgb24", src_colorspace="itu601") for f in inp.decode(video=0)]
    if len(back) != len(frames):
        raise RuntimeError(f"{choice.codec}: {len(frames)} frames in, {len(back)} out")
    return np.stack(back)[:, :h, :w]


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
    """[3,P,P] float HR patch -> [T,3,crop,crop]: a straight pan (up to 2 px/frame each way)
    and, one time in three, a slow zoom, sampled with bicubic `grid_sample`."""
    p = patch.shape[-1]
    vy, vx = _uniform(gen, -2, 2), _uniform(gen, -2, 2)
    zoom = _uniform(gen, -0.01, 0.01) if _chance(gen, 1 / 3) else 0.0
    # start where the whole path stays inside the patch
    travel = max(abs(vy), abs(vx)) * (frames - 1) + abs(zoom) * frames * crop
    room = max(0.0, p - crop - travel)
    y0 = _uniform(gen, 0, room) + (max(0.0, -vy) * (frames - 1))
    x0 = _uniform(gen, 0, room) + (max(0.0, -vx) * (frames - 1))
    t = torch.arange(frames, dtype=torch.float32)
    s = 1 + zoom * t  # crop side factor per frame
    cy = y0 + vy * t + crop / 2
    cx = x0 + vx * t + crop / 2
    # affine theta maps output [-1,1] to input [-1,1] (align_corners=False)
    theta = torch.zeros(frames, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = s * crop / p
    theta[:, 0, 2] = (2 * cx / p) - 1
    theta[:, 1, 2] = (2 * cy / p) - 1
    grid = F.affine_grid(theta, [frames, 3, crop, crop], align_corners=False)
    src = patch[None].expand(frames, -1, -1, -1)
    out = F.grid_sample(src, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return out.clamp(0, 1)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def degrade_clip(
    hr: torch.Tensor, scale: int, gen: torch.Generator, clean: float = 0.3
) -> torch.Tensor:
    """[T,3,H,W] HR frames in [0, 1] -> [T,3,H/s,W/s] 8-bit LR frames of one clip.

    With probability `clean`: MATLAB bicubic only. Otherwise blur (half the clips), a random
    resize kernel, per-frame sensor noise (half), then a real codec over the group of frames
    (nine clips in ten; the rest stay uncompressed but degraded)."""
    h, w = hr.shape[-2:]
    size = (h // scale, w // scale)
    if _chance(gen, clean):
        return imresize(hr, size=size).clamp(0, 1).mul(255).round().div(255)
    x = hr
    if _chance(gen, 0.5):
        x = gaussian_blur(x, _uniform(gen, 0.3, 1.5))
    kernel = KERNELS[int(torch.randint(len(KERNELS), (), generator=gen))]
    x = imresize(x, size=size, kernel=kernel)
    if _chance(gen, 0.5):
        x = x + (_uniform(gen, 0.5, 4.0) / 255) * torch.randn(x.shape, generator=gen)
    lr = _to_uint8(x)
    if _chance(gen, 0.9):
        lr = encode_decode(lr, random_codec(gen, size[1], size[0]))
    return torch.from_numpy(np.ascontiguousarray(lr)).permute(0, 3, 1, 2).float().div(255)


def video_lr(
    hr: torch.Tensor, scale: int, gen: torch.Generator, clean: float = 0.3
) -> torch.Tensor:
    """`Degrade` for single frames ([B,3,H,W], e.g. the dev crops): each one a 1-frame clip."""
    return torch.cat([degrade_clip(frame[None], scale, gen, clean) for frame in hr])
