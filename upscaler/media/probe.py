"""Probe a media file: streams, timing, colour, and the video packet index (no decoding)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.logging
import numpy as np

from upscaler.errors import InputError, LimitExceededError
from upscaler.media.interlace import (
    COMB_RATIO,
    FIELD_ORDERS,
    comb_ratio,
    looks_interlaced,
    looks_telecined,
    repaired_ratio,
)
from upscaler.media.limits import Limits
from upscaler.media.safe_open import open_media, short_reason

PRIMARIES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
TRANSFERS = {
    1: "bt709",
    2: "unknown",
    6: "smpte170m",
    13: "iec61966-2-1",
    16: "smpte2084",
    18: "arib-std-b67",
}
MATRICES = {0: "gbr", 1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
RANGES = {0: "unknown", 1: "tv", 2: "pc"}


@dataclass(frozen=True)
class PacketIndex:
    """Video packets in decode order: pts, dts, duration (stream time base) and keyframe flag."""

    pts: np.ndarray
    dts: np.ndarray
    duration: np.ndarray
    keyframe: np.ndarray

    def __len__(self) -> int:
        return len(self.pts)


@dataclass(frozen=True)
class Colour:
    """Colour tags as FFmpeg numbers (AVColorPrimaries, ...); 2 / 0 mean unspecified."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    def names(self) -> dict[str, str]:
        return {
            "primaries": PRIMARIES.get(self.primaries, str(self.primaries)),
            "transfer": TRANSFERS.get(self.transfer, str(self.transfer)),
            "matrix": MATRICES.get(self.matrix, str(self.matrix)),
            "range": RANGES.get(self.range, str(self.range)),
        }


@dataclass(frozen=True)
class VideoInfo:
    """Facts about the (first) video stream."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    frame_rate: Fraction
    frame_count: int
    vfr: bool
    duration_s: float
    start_pts: int
    colour: Colour
    rotation: int
    sample_aspect_ratio: Fraction | None  # probe says 1 when the file does not say
    field_order: str = "unknown"  # what the stream says: progressive, tt, bb, tb, bt
    interlaced_flags: float = 0.0  # share of the sample frames flagged interlaced
    combed: float = 0.0  # share of the sample frames that show combing
    interlaced: bool = False  # the verdict (combing, not flags; see media/interlace.py)
    telecined: bool = False  # 3:2 pulldown film (combing in a 5-frame cycle, re-pairable)

    @property
    def display_aspect_ratio(self) -> Fraction:
        """width * SAR / height: the shape the picture is shown in."""
        return Fraction(self.width, self.height) * (self.sample_aspect_ratio or 1)


@dataclass(frozen=True)
class StreamInfo:
    """An audio, subtitle or other non-video stream."""

    index: int
    type: str
    codec: str
    language: str | None
    channels: int | None = None
    sample_rate: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    """Everything `probe` learns about a file."""

    path: str
    container: str
    size_bytes: int
    duration_s: float
    video: VideoInfo
    audio: list[StreamInfo] = field(default_factory=list)
    subtitles: list[StreamInfo] = field(default_factory=list)
    other: list[StreamInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (fractions as "num/den" strings, colour as names and numbers)."""
        data = asdict(self)
        video = data["video"]
        video["display_aspect_ratio"] = self.video.display_aspect_ratio
        for key in ("time_base", "frame_rate", "sample_aspect_ratio", "display_aspect_ratio"):
            if video[key] is not None:
                video[key] = f"{video[key].numerator}/{video[key].denominator}"
        video["colour_names"] = self.video.colour.names()
        return data


def _bit_depth(pix_fmt: str) -> int:
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, AttributeError):
        return 8


@contextmanager
def demuxer_errors() -> Iterator[list[str]]:
    """Collect FFmpeg's error messages (e.g. a damaged container that makes the demuxer
    skip data, and with it whole frames) instead of printing them."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    errors: list[str] = []
    try:
        with av.logging.Capture() as logs:
            yield errors
    finally:
        av.logging.set_level(previous)
    errors.extend(  # one line each: FFmpeg appends "\n (repeated N more times)"
        msg.strip().splitlines()[0]
        for level, _, msg in logs
        if level <= av.logging.ERROR and msg.strip()
    )


def scan_packets(container: av.container.InputContainer, stream: av.VideoStream) -> PacketIndex:
    """Demux every packet of `stream` (no decoding) into a PacketIndex."""
    pts, dts, dur, key = [], [], [], []
    for packet in container.demux(stream):
        if packet.size == 0:  # flush packet
            continue
        if packet.pts is None:
            raise InputError("video packets carry no timestamps; remux the file to MP4 or MKV")
        pts.append(packet.pts)
        dts.append(packet.dts if packet.dts is not None else packet.pts)
        dur.append(packet.duration or 0)
        key.append(packet.is_keyframe)
    return PacketIndex(
        np.asarray(pts, np.int64),
        np.asarray(dts, np.int64),
        np.asarray(dur, np.int64),
        np.asarray(key, bool),
    )


def shown_frames(packets: PacketIndex) -> int:
    """Frames that can be shown: not those an open GOP at the very start (a recording cut
    mid-stream) places before the first keyframe, which need the GOP that was cut off."""
    return int((packets.pts >= packets.pts[0]).sum())


def is_variable_rate(pts: np.ndarray) -> bool:
    """True when frame intervals differ by more than one tick-rounding step (VFR)."""
    if len(pts) < 3:
        return False
    deltas = np.diff(np.sort(pts))
    return bool(deltas.max() - deltas.min() > max(2, 0.02 * np.median(deltas)))


def sample_aspect(stream: av.VideoStream) -> Fraction:
    """The stream's sample (pixel) aspect ratio; 1 where the file leaves it unset or 0:1."""
    sar = stream.sample_aspect_ratio
    if not sar and stream.codec_context is not None:
        sar = stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar > 0 else Fraction(1)


@dataclass(frozen=True)
class _Sample:
    """What the first decoded frames show: rotation, interlaced flags, combing, and for each
    combed frame its comb ratio with a field re-paired from a neighbour (others: 0)."""

    rotation: int = 0
    flagged: float = 0.0  # share of the sample frames flagged interlaced
    comb_ratios: list[float] = field(default_factory=list)
    repaired: list[float] = field(default_factory=list)


def _sample_frames(path: Path, index: int, limits: Limits, count: int = 10) -> _Sample:
    """Decode the first `count` frames from a fresh open rather than a seek back: some
    demuxers (FLV without an index, piped-style MPEG-PS) cannot seek."""
    rotation, flags, lumas = 0, [], []
    with open_media(path, limits) as container:
        try:
            for frame in container.decode(container.streams[index]):
                if not flags:
                    rotation = int(frame.rotation or 0)
                flags.append(frame.interlaced_frame)
                lumas.append(frame.to_ndarray(format="gray"))
                if len(flags) == count:
                    break
        except av.error.FFmpegError:
            pass
    ratios = [comb_ratio(luma) for luma in lumas]
    repaired = [
        min(repaired_ratio(luma, lumas[j]) for j in (i - 1, i + 1) if 0 <= j < len(lumas))
        if ratio > COMB_RATIO and len(lumas) > 1
        else 0.0
        for i, (luma, ratio) in enumerate(zip(lumas, ratios, strict=True))
    ]
    return _Sample(rotation, sum(flags) / len(flags) if flags else 0.0, ratios, repaired)


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    ctx = stream.codec_context
    return StreamInfo(
        index=stream.index,
        type=stream.type,
        codec=ctx.codec.canonical_name if ctx is not None else "unknown",
        language=stream.language,
        channels=getattr(ctx, "channels", None) if stream.type == "audio" else None,
        sample_rate=getattr(ctx, "sample_rate", None) if stream.type == "audio" else None,
    )


def probe_with_packets(
    path: str | Path, limits: Limits | None = None
) -> tuple[MediaInfo, PacketIndex]:
    """Probe `path` and return its facts plus the video packet index (for chunk planning)."""
    limits = limits or Limits.from_env()
    path = Path(path)
    with open_media(path, limits) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no"]
            raise InputError(f"{path}: no video stream (found {', '.join(kinds)} streams)")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # no decoder for the codec id (unknown, or left out of the build)
            raise InputError(
                f"{path}: the video stream's codec is unknown (no decoder in this build)"
            )
        uncopyable = [
            f"{s.type} stream #{s.index}"
            for s in container.streams
            if s.type in ("audio", "subtitle") and s.codec_context is None
        ]
        if uncopyable:  # merge stream-copies these; FFmpeg cannot without a known codec
            raise InputError(f"{path}: {uncopyable[0]} has an unknown codec")
        width, height = ctx.width, ctx.height
        if width <= 0 or height <= 0:
            raise InputError(f"{path}: video stream has no valid frame size")
        if width * height > limits.max_input_pixels:
            raise LimitExceededError(
                f"{path}: {width}x{height} is over the limit of {limits.max_input_pixels} pixels"
            )
        try:
            with demuxer_errors() as errors:
                packets = scan_packets(container, stream)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: corrupt video stream ({short_reason(exc)})") from None
        if errors:
            raise InputError(f"{path}: corrupt container data ({errors[0]})")
        if len(packets) == 0:
            raise InputError(f"{path}: the video stream has no frames")
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        span = int(packets.pts.max() - packets.pts.min())
        last = int(packets.duration[np.argmax(packets.pts)]) or (
            round(1 / (rate * time_base)) if rate else 0
        )
        duration_s = float((span + last) * time_base)
        if duration_s > limits.max_duration_s:
            raise LimitExceededError(
                f"{path}: {duration_s:.0f} s is over the limit of {limits.max_duration_s:.0f} s"
            )
        measured_fps = (len(packets) - 1) / float(span * time_base) if span else 0.0
        if measured_fps > limits.max_fps:
            raise LimitExceededError(f"{path}: {measured_fps:.1f} fps is over {limits.max_fps}")
        pix_fmt = ctx.pix_fmt or "yuv420p"
        sample = _sample_frames(path, stream.index, limits)
        ratios = sample.comb_ratios
        video = VideoInfo(
            index=stream.index,
            codec=ctx.codec.canonical_name,
            width=width,
            height=height,
            pix_fmt=pix_fmt,
            bit_depth=_bit_depth(pix_fmt),
            time_base=time_base,
            frame_rate=Fraction(rate),
            frame_count=shown_frames(packets),
            vfr=is_variable_rate(packets.pts),
            duration_s=duration_s,
            start_pts=int(packets.pts.min()),
            colour=Colour(
                int(ctx.color_primaries),
                int(ctx.color_trc),
                int(ctx.colorspace),
                int(ctx.color_range),
            ),
            rotation=sample.rotation,
            sample_aspect_ratio=sample_aspect(stream),
            field_order=FIELD_ORDERS.get(int(ctx.field_order), "unknown"),
            interlaced_flags=sample.flagged,
            combed=sum(r > COMB_RATIO for r in ratios) / len(ratios) if ratios else 0.0,
            interlaced=looks_interlaced(ratios),
            telecined=looks_telecined(ratios, sample.repaired),
        )
        streams = [_stream_info(s) for s in container.streams if s.index != stream.index]
        info = MediaInfo(
            path=str(path),
            container=container.format.name,
            size_bytes=path.stat().st_size,
            duration_s=max(duration_s, float(container.duration or 0) / av.time_base),
            video=video,
            audio=[s for s in streams if s.type == "audio"],
            subtitles=[s for s in streams if s.type == "subtitle"],
            other=[s for s in streams if s.type not in ("audio", "subtitle")],
        )
    return info, packets


def probe(path: str | Path, limits: Limits | None = None) -> MediaInfo:
    """Probe a media file (see `MediaInfo`); raise InputError for anything unusable."""
    return probe_with_packets(path, limits)[0]
