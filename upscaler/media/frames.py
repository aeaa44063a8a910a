"""Decoded frames <-> numpy planes, for the planar Y'CbCr formats the engine works in."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from upscaler.errors import MediaError
from upscaler.media.chunks import read_window
from upscaler.media.filters import Picture, treat
from upscaler.media.limits import Limits
from upscaler.media.probe import sample_aspect
from upscaler.media.safe_open import open_media

#: Planar formats used as they are; anything else is converted (see `engine_pix_fmt`).
PLANAR_YUV = {
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "gray",
    "gray10le",
}


def engine_pix_fmt(pix_fmt: str) -> str:
    """The planar format we decode `pix_fmt` into (10+ bit stays 10-bit, RGB goes 4:4:4)."""
    if pix_fmt in PLANAR_YUV:
        return pix_fmt
    try:
        fmt = av.VideoFormat(pix_fmt)
        bits = max(c.bits for c in fmt.components)
        rgb = fmt.is_rgb
    except (ValueError, AttributeError):
        return "yuv420p"
    if rgb:
        return "yuv444p10le" if bits > 8 else "yuv444p"
    return "yuv420p10le" if bits > 8 else "yuv420p"


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a planar format we handle."""
    return 10 if pix_fmt.endswith("10le") else 8


def is_full_range(pix_fmt: str, color_range: int) -> bool:
    """JPEG-style full range (0..255) rather than studio range (16..235)?"""
    return color_range == 2 or pix_fmt.startswith("yuvj")


@dataclass
class DecodedFrame:
    """One frame's planes (uint8 or uint16) and its timing in the stream's time base."""

    planes: list[np.ndarray]
    pts: int
    duration: int


def frame_to_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Each plane of a planar frame as a numpy view of the frame's own buffer (rows of
    `line_size`, cropped to the width): no copy. The view keeps the frame's buffer alive; the
    engine's one copy is into its batch (`pipeline.to_planes`, `engine.fused`)."""
    dtype = np.uint16 if bit_depth(frame.format.name) > 8 else np.uint8
    planes = []
    for plane in frame.planes:
        row = plane.line_size // np.dtype(dtype).itemsize
        data = np.frombuffer(plane, dtype).reshape(plane.height, row)
        planes.append(data[:, : plane.width])
    return planes


def planes_to_frame(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    """Build a VideoFrame of `pix_fmt` from planes shaped like `frame_to_planes` output."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, data in zip(frame.planes, planes, strict=True):
        row = plane.line_size // data.dtype.itemsize
        # Odd sizes: chroma upscaled from ceil(w/2) can be one sample wider than ceil(W/2).
        view = np.frombuffer(plane, data.dtype).reshape(plane.height, row)
        view[:, : plane.width] = data[: plane.height, : plane.width]
    return frame


def _within(
    frames: Iterable[av.VideoFrame], window: tuple[Fraction, Fraction], time_base: Fraction
) -> Iterator[av.VideoFrame]:
    """The frames shown in [start, end), compared in whole ticks of `time_base` (a Matroska
    chunk counts in milliseconds)."""
    start, end = (round(t / time_base) for t in window)
    for frame in frames:
        if frame.pts is None or start <= frame.pts < end:
            yield frame


def chunk_frames(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """The first video stream's decoded frames; in a chunk file, only those of the chunk's
    window (`chunks.read_window`)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    decoded = container.decode(stream)
    window = read_window(container)
    return decoded if window is None else _within(decoded, window, stream.time_base)


def last_frame(path: Path, limits: Limits) -> av.VideoFrame | None:
    """The last frame a chunk file shows, as decoded (what inverse telecine needs of the
    chunk before: see `filters.treat`)."""
    with open_media(path, limits) as container:
        return next(iter(deque(chunk_frames(container), maxlen=1)), None)


def decode_frames(
    container: av.container.InputContainer,
    pix_fmt: str,
    picture: Picture | None = None,
    before: Sequence[av.VideoFrame] = (),
) -> Iterator[DecodedFrame]:
    """Decode the first video stream into planes of `pix_fmt` (converted where needed),
    deinterlaced or made square-pixelled first if `picture` says so (`before`: the frame
    shown just before these, for inverse telecine). In a chunk file, only the frames of the
    chunk's window (`chunks.read_window`) come out."""
    stream = container.streams.video[0]
    decoded = chunk_frames(container)
    if picture is not None:
        decoded = treat(decoded, stream, picture, sample_aspect(stream), before)
    for frame in decoded:
        pts, duration = frame.pts, frame.duration or 0
        if pts is None:
            raise MediaError("a decoded frame has no timestamp")
        if frame.format.name != pix_fmt:
            frame = frame.reformat(format=pix_fmt)
        yield DecodedFrame(frame_to_planes(frame), pts, duration)
