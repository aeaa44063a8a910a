"""A deterministic sample clip: a slow camera move over a shipped photo, with a sound track.

Used by `make demo`, the benchmarks and the tests, so every one of them sees footage with
real texture (not noise) without shipping a video file. The photo is "LadyBird" by Charles
Barbin (GPL-2+, from Debian's mate-backgrounds); see DATA_LICENSES.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import numpy as np
from PIL import Image

from upscaler.media.writer import atomic_output


def sample_photo() -> Image.Image:
    """The shipped sample photo (1280x800 RGB)."""
    with resources.files("upscaler.media").joinpath("sample.jpg").open("rb") as fh:
        return Image.open(fh).convert("RGB")


def camera_path(photo: Image.Image, width: int, height: int, frames: int) -> list[tuple]:
    """Crop boxes for a smooth pan-and-zoom across `photo`, one per frame."""
    pw, ph = photo.size
    aspect = width / height
    boxes = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 0.55 + 0.15 * math.sin(math.pi * t)  # fraction of the photo height shown
        bh = ph * zoom
        bw = min(bh * aspect, pw)
        bh = bw / aspect
        cx = bw / 2 + (pw - bw) * (0.2 + 0.6 * t)
        cy = bh / 2 + (ph - bh) * (0.5 + 0.3 * math.sin(2 * math.pi * t))
        boxes.append((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
    return boxes


def iter_frames(width: int, height: int, frames: int) -> Iterator[np.ndarray]:
    """The sample's frames as RGB arrays (area-filtered from the photo, like a camera),
    rendered one at a time so a long clip needs no more memory than a short one."""
    photo = sample_photo()
    for box in camera_path(photo, width, height, frames):
        yield np.asarray(photo.resize((width, height), Image.BOX, box=box))


def render_frames(width: int, height: int, frames: int) -> list[np.ndarray]:
    """All of the sample's frames as a list (for short clips and ground truth)."""
    return list(iter_frames(width, height, frames))


def make_sample_clip(
    path: str | Path,
    width: int = 426,
    height: int = 240,
    seconds: float = 3.0,
    fps: Fraction | int = 30,
    codec: str = "libx264",
    crf: int = 20,
    audio: bool = True,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write the sample clip (H.264 + AAC stereo tone by default) to `path`, atomically."""
    path = Path(path)
    fps = Fraction(fps)
    count = max(1, round(seconds * fps))
    with atomic_output(path) as tmp, av.open(str(tmp), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.options = {"crf": str(crf)}
        video.codec_context.color_primaries = 1
        video.codec_context.color_trc = 1
        video.codec_context.colorspace = 1
        video.codec_context.color_range = 1
        if audio:
            sound = out.add_stream("aac", rate=48000, layout="stereo")
        for rgb in iter_frames(width, height, count):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio:
            _write_tone(out, sound, count / float(fps))
    return path


def _write_tone(out: av.container.OutputContainer, stream, seconds: float) -> None:
    rate, block = 48000, 1024
    total = int(rate * seconds)
    for start in range(0, total, block):
        n = min(block, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        tone = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
        frame = av.AudioFrame.from_ndarray(
            np.stack([tone, tone]).astype(np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate, frame.pts = rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
