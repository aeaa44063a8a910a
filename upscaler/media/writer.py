"""Writing media: atomic outputs and the video encoder settings we support."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from upscaler.errors import OutputError
from upscaler.media.probe import Colour

#: User-facing codec name -> (FFmpeg encoder, supports CRF).
CODECS = {
    "h264": "libx264",
    "h265": "libx265",
    "hevc": "libx265",
}
#: Pixel formats each encoder takes as-is; anything else is converted (see `output_pix_fmt`).
_X26X_PIX_FMTS = (
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuv444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "gray",
)
ENCODER_PIX_FMTS = {"libx264": _X26X_PIX_FMTS, "libx265": _X26X_PIX_FMTS}


#: "auto": chosen when the encoder is added (upscaler.engine.encoder: ultrafast on the CPU).
PRESETS = (
    "auto",
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


@dataclass(frozen=True)
class EncodeSettings:
    """How upscaled video is encoded. `crf=0` with h264 is mathematically lossless.

    The default preset is veryfast: at 480p it encodes ~3x faster than medium on a 2-core
    CPU, which keeps the encoder from eating the model's time; use slow for archives.
    """

    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise OutputError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        if not 0 <= self.crf <= 51:
            raise OutputError(f"crf must be between 0 and 51, not {self.crf}")
        if self.preset not in PRESETS:
            raise OutputError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")

    @property
    def encoder(self) -> str:
        return CODECS[self.codec]


def output_pix_fmt(source_pix_fmt: str, encoder: str, size: tuple[int, int] | None = None) -> str:
    """The pixel format to encode in: the source's when the encoder takes it, else the
    nearest 8- or 10-bit planar YUV format (so 10-bit stays 10-bit).

    With an odd output `size` (e.g. 35x21 at x3) x264/x265 cannot take 4:2:0 or 4:2:2,
    so such frames are encoded in 4:4:4 instead."""
    try:
        bits = max(c.bits for c in av.VideoFormat(source_pix_fmt).components)
    except ValueError:
        bits = 8
    allowed = ENCODER_PIX_FMTS[encoder]
    chosen = source_pix_fmt if source_pix_fmt in allowed else None
    chosen = chosen or ("yuv420p10le" if bits > 8 else "yuv420p")
    subsampled = chosen.startswith(("yuv420", "yuvj420", "yuv422", "yuvj422"))
    if size is not None and subsampled and (size[0] % 2 or size[1] % 2):
        return "yuv444p10le" if bits > 8 else "yuv444p"
    return chosen


def add_video_stream(
    container: av.container.OutputContainer,
    codec: str,
    width: int,
    height: int,
    pix_fmt: str,
    time_base: Fraction,
    frame_rate: Fraction | None,
    colour: Colour,
    sample_aspect_ratio: Fraction | None = None,
) -> av.VideoStream:
    """Add a `codec` video stream at the given size/format with timing, colour tags and the
    pixel shape (SAR: anamorphic stays anamorphic) set; the caller sets the codec's options."""
    stream = container.add_stream(codec, rate=frame_rate or None)
    ctx = stream.codec_context
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if sample_aspect_ratio and sample_aspect_ratio != 1:
        ctx.sample_aspect_ratio = sample_aspect_ratio
    stream.time_base = time_base
    ctx.time_base = time_base
    ctx.color_primaries = colour.primaries
    ctx.color_trc = colour.transfer
    ctx.colorspace = colour.matrix
    ctx.color_range = colour.range
    return stream


def add_video_encoder(
    container: av.container.OutputContainer,
    settings: EncodeSettings,
    width: int,
    height: int,
    pix_fmt: str,
    time_base: Fraction,
    frame_rate: Fraction | None,
    colour: Colour,
    sample_aspect_ratio: Fraction | None = None,
) -> av.VideoStream:
    """Add the settings' software encoder (x264/x265 at its CRF and preset)."""
    stream = add_video_stream(
        container,
        settings.encoder,
        width,
        height,
        pix_fmt,
        time_base,
        frame_rate,
        colour,
        sample_aspect_ratio,
    )
    options = {"crf": str(settings.crf), "preset": settings.preset}
    if settings.encoder == "libx265":
        options["x265-params"] = "log-level=error"
    options.update(settings.options)
    stream.options = options
    return stream


def can_hold(muxer: str, stream: av.stream.Stream) -> bool:
    """Can the `muxer` container stream-copy `stream`? Tried for real (a header is written to
    memory), so a muxer that accepts the codec id but has no tag for it is found out too."""
    try:
        with av.open(io.BytesIO(), "w", muxer) as out:
            out.add_stream_from_template(stream, opaque=True).time_base = stream.time_base
            out.start_encoding()
    except (ValueError, av.error.FFmpegError):
        return False
    return True


def mp4_options(time_base: Fraction, faststart: bool = False) -> dict[str, str]:
    """MP4 muxer options that keep timestamps exact: the edit list that positions a chunk
    starting mid-video is written in the movie timescale (1/1000 by default), so use the
    stream's own time base denominator instead."""
    options = {"movie_timescale": str(time_base.denominator)}
    if faststart:
        options["movflags"] = "+faststart"
    return options


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete temporary files of `path` left by processes that no longer exist (a SIGKILL
    or power cut inside `atomic_output`); a live writer's file is left alone."""
    removed = []
    pattern = f".{path.stem}.partial-*{path.suffix}"
    for stale in path.parent.glob(pattern):
        pid = stale.name[len(f".{path.stem}.partial-") : len(stale.name) - len(path.suffix)]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    On any error (or Ctrl-C) the temporary file is removed, so nothing half-written ever
    appears under the final name.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    remove_stale_partials(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
