"""What happens to decoded pictures before the model: deinterlacing (FFmpeg's bwdif) and
resampling to square pixels, through PyAV's filter graph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.filter

from upscaler.errors import InputError
from upscaler.media.interlace import top_field_first
from upscaler.media.probe import VideoInfo

DEINTERLACE_MODES = ("auto", "off", "frame", "field")


@dataclass(frozen=True)
class Picture:
    """Decode-side treatment. `deinterlace`: off, frame (one frame per interlaced frame) or
    field (one frame per field: twice the frames, in half the time base);
    `square_pixels`: resample anamorphic video so each pixel is square, at the same display
    aspect (never shrinking: a wide pixel widens the picture, a tall one heightens it)."""

    deinterlace: str = "off"
    square_pixels: bool = False
    top_field_first: bool | None = None  # None: from each frame's flags

    @classmethod
    def choose(cls, mode: str, square_pixels: bool, video: VideoInfo) -> Picture:
        """Resolve `--deinterlace MODE` against a probed video (`probe.VideoInfo`)."""
        if mode not in DEINTERLACE_MODES:
            raise InputError(f"--deinterlace must be one of {', '.join(DEINTERLACE_MODES)}")
        if mode == "auto":
            mode = "frame" if video.interlaced else "off"
        return cls(mode, square_pixels, top_field_first(video.field_order))

    @property
    def active(self) -> bool:
        return self.deinterlace != "off" or self.square_pixels

    @property
    def frames_per_frame(self) -> int:
        return 2 if self.deinterlace == "field" else 1

    def time_base(self, source: Fraction) -> Fraction:
        """The output's time base: the source's, halved for field-rate output."""
        return source / self.frames_per_frame

    def size(self, width: int, height: int, sar: Fraction) -> tuple[int, int]:
        """The picture size after this treatment."""
        if not self.square_pixels or sar == 1:
            return width, height
        if sar > 1:
            return max(1, round(width * sar)), height
        return width, max(1, round(height / sar))


def treat(
    frames: Iterable[av.VideoFrame], stream: av.VideoStream, picture: Picture, sar: Fraction
) -> Iterator[av.VideoFrame]:
    """`frames` through the filter graph `picture` asks for (as they are when it asks for
    nothing). Timestamps are in `picture.time_base(stream.time_base)`: bwdif counts in half the
    input time base, which frame mode puts back in the stream's."""
    if not picture.active:
        yield from frames
        return
    ctx = stream.codec_context
    graph = av.filter.Graph()
    nodes = [
        graph.add_buffer(
            width=ctx.width, height=ctx.height, format=ctx.format, time_base=stream.time_base
        )
    ]
    if picture.deinterlace != "off":
        parity = {None: "auto", True: "tff", False: "bff"}[picture.top_field_first]
        mode = "send_field" if picture.deinterlace == "field" else "send_frame"
        nodes.append(graph.add("bwdif", f"mode={mode}:parity={parity}:deint=all"))
    if picture.square_pixels and sar != 1:
        width, height = picture.size(ctx.width, ctx.height, sar)
        nodes.append(graph.add("scale", f"w={width}:h={height}:flags=lanczos"))
        nodes.append(graph.add("setsar", "1"))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    time_base = picture.time_base(stream.time_base)
    last: list[av.VideoFrame] = []
    for frame in frames:
        graph.push(frame)
        yield from _pull_all(graph, time_base, last)
    graph.push(None)
    yield from _pull_all(graph, time_base, last)


def _pull_all(
    graph: av.filter.Graph, time_base: Fraction, last: list[av.VideoFrame]
) -> Iterator[av.VideoFrame]:
    """The frames the graph has ready, in `time_base`. The second field of the very last
    frame comes out of bwdif with the first field's time when the frame's duration is
    unknown to it: placed one field later instead, since every time must be distinct."""
    while True:
        try:
            frame = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        scale = frame.time_base / time_base
        frame.pts = round(frame.pts * scale)
        frame.duration = round((frame.duration or 0) * scale)
        frame.time_base = time_base
        if last and frame.pts <= last[0].pts:
            frame.pts = last[0].pts + (last[0].duration or 1)
        last[:] = [frame]
        yield frame
