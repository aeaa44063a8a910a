"""Live sources: a local file played at its native rate, MPEG-TS on stdin, or an http(s) URL.

Every source is demuxed by PyAV from a Python file object we opened ourselves, with FFmpeg's
own nested opens refused and the demuxer limited to `safe_open.ALLOWED_DEMUXERS` (so an HLS
playlist or a concat script cannot make FFmpeg fetch other URLs or local files). Stream URLs
go through the project's SSRF guard (`upscaler.net.ssrf`, shared with the fetch Lambda: public
addresses only, the checked address is the one connected to, redirects re-checked).
HLS/DASH manifests are therefore not supported: each segment would be a nested open FFmpeg
makes itself; use a single progressive stream (MPEG-TS, FLV, Matroska over http) instead.

Frames are released at their presentation time relative to the first frame, measured on the
given `Clock`, whatever the source: a file plays "as if live", and a pipe or URL that delivers
faster than real time is slowed down to it. A source that stalls is re-anchored instead of
being made up for in a burst.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

from upscaler.engine.colour import matrix_name
from upscaler.errors import InputError, MediaError
from upscaler.live.pacing import Clock
from upscaler.media.frames import (
    bit_depth,
    engine_pix_fmt,
    frame_to_planes,
    is_full_range,
)
from upscaler.media.safe_open import ALLOWED_DEMUXERS, _refuse_nested_open, open_media
from upscaler.net.ssrf import UrlGuard, open_url

#: When the source is this many seconds behind its own timeline, re-anchor (no catch-up).
REANCHOR_S = 1.0


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of live mode needs to know about the source video."""

    width: int
    height: int
    pix_fmt: str  # the engine's planar format the frames are decoded to
    bits: int
    matrix: str
    full_range: bool
    time_base: Fraction
    rate: Fraction | None


@dataclass
class SourceFrame:
    """One decoded frame: planes in `VideoInfo.pix_fmt`, timing in the video time base."""

    planes: list
    pts: int
    duration: int
    seconds: float  # presentation time from the first frame
    index: int


def source_kind(spec: str) -> str:
    """'stdin', 'url' or 'file' for a SOURCE argument."""
    if spec == "-":
        return "stdin"
    if "://" in spec:
        return "url"
    return "file"


def _open_stream(handle: BinaryIO, what: str, fmt: str | None = None) -> av.container.Container:
    options = {} if fmt else {"format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    try:
        return av.open(handle, mode="r", format=fmt, io_open=_refuse_nested_open, options=options)
    except InputError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise InputError(f"{what}: not a supported live stream ({exc})") from None


@contextlib.contextmanager
def open_source(spec: str, guard: Any = None) -> Iterator[av.container.Container]:
    """Open SOURCE for demuxing (a context manager). `guard`: an SSRF `UrlGuard`
    for URLs (default: public addresses only)."""
    kind = source_kind(spec)
    if kind == "file":
        with open_media(Path(spec)) as container:
            yield container
        return
    if kind == "stdin":
        handle = sys.stdin.buffer
        container = _open_stream(handle, "stdin", "mpegts")
        try:
            yield container
        finally:
            container.close()
        return
    response, _ = open_url(spec, guard or UrlGuard(), timeout=10.0)
    try:
        container = _open_stream(response, spec)
        try:
            yield container
        finally:
            container.close()
    finally:
        response.close()


def video_info(container: av.container.Container) -> VideoInfo:
    """The engine-side description of the first video stream."""
    if not container.streams.video:
        raise InputError("the source has no video stream")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    pix_fmt = engine_pix_fmt(ctx.pix_fmt or "yuv420p")
    if not ctx.width or not ctx.height:
        raise InputError("the source's video size is unknown")
    return VideoInfo(
        width=ctx.width,
        height=ctx.height,
        pix_fmt=pix_fmt,
        bits=bit_depth(pix_fmt),
        matrix=matrix_name(int(ctx.colorspace), ctx.height),
        full_range=is_full_range(pix_fmt, int(ctx.color_range)),
        time_base=stream.time_base or Fraction(1, 90000),
        rate=stream.average_rate or stream.guessed_rate,
    )


class Pacer:
    """Releases media times at the same pace on `clock`, re-anchoring after stalls."""

    def __init__(self, clock: Clock, realtime: bool = True) -> None:
        self.clock = clock
        self.realtime = realtime
        self._anchor: float | None = None  # clock time of media time 0
        self.reanchored = 0

    def wait(self, seconds: float) -> float:
        """Wait until media time `seconds` is due; returns the release (arrival) time."""
        now = self.clock.now()
        if self._anchor is None:
            self._anchor = now - seconds
        if self.realtime:
            due = self._anchor + seconds
            if now < due:
                self.clock.sleep(due - now)
                now = self.clock.now()
            elif now - due > REANCHOR_S:
                self._anchor = now - seconds
                self.reanchored += 1
        return now


def demux_live(
    container: av.container.Container,
    info: VideoInfo,
    pacer: Pacer,
    audio: bool = True,
    max_seconds: float | None = None,
    stop: Any = None,
    offset: float = 0.0,
) -> Iterator[tuple[str, Any, float]]:
    """Yield ('video', SourceFrame, arrival) and ('audio', packet, arrival) in stream order,
    video frames released at their native rate by `pacer`. Frame times start at `offset`
    (seconds: a looped file continues its timeline); `max_seconds` counts from the first
    frame of this container."""
    video = container.streams.video[0]
    streams = [video]
    if audio and container.streams.audio:
        streams.append(container.streams.audio[0])
    first: float | None = None
    index = 0
    try:
        for packet in container.demux(streams):
            if stop is not None and stop.is_set():
                return
            if packet.stream.type == "audio":
                if packet.size and packet.pts is not None:
                    yield "audio", packet, pacer.clock.now()
                continue
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                t = float(frame.pts * video.time_base)
                first = t if first is None else first
                seconds = t - first
                if max_seconds is not None and seconds >= max_seconds:
                    return
                seconds += offset
                if frame.format.name != info.pix_fmt:
                    frame = frame.reformat(format=info.pix_fmt)
                arrival = pacer.wait(seconds)
                duration = frame.duration or 0
                item = SourceFrame(frame_to_planes(frame), frame.pts, duration, seconds, index)
                index += 1
                yield "video", item, arrival
                if stop is not None and stop.is_set():
                    return
    except av.error.FFmpegError as exc:
        raise MediaError(f"the live source failed ({exc})") from None
