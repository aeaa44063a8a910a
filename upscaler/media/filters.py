"""What happens to decoded pictures before the model: deinterlacing (FFmpeg's bwdif), inverse
telecine (fieldmatch + decimate) and resampling to square pixels, through PyAV's filter
graph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, islice, pairwise

import av
import av.filter
import numpy as np

from upscaler.errors import InputError
from upscaler.media.interlace import top_field_first
from upscaler.media.probe import VideoInfo

DEINTERLACE_MODES = ("auto", "off", "frame", "field", "ivtc")
#: 3:2 pulldown spreads 4 film frames over a cycle of 5 video frames; decimate drops one.
CYCLE = 5
#: A stand-in frame for decimate to compare the first real one with: every luma sample moved
#: by an eighth of its range (towards mid-grey), far from a duplicate (decimate's threshold
#: is 1.1 %) and short of a scene change (15 %).
STAND_IN = "y='val+(maxval+1)/8*(1-2*gt(val,maxval/2))'"


@dataclass(frozen=True)
class Picture:
    """Decode-side treatment. `deinterlace`: off, frame (one frame per interlaced frame),
    field (one frame per field: twice the frames, in half the time base) or ivtc (inverse
    telecine: the film frames back from 3:2 pulldown, 4 of each 5, in a quarter of the time
    base so film frame times are whole ticks); `square_pixels`: resample anamorphic video so
    each pixel is square, at the same display aspect (never shrinking: a wide pixel widens
    the picture, a tall one heightens it)."""

    deinterlace: str = "off"
    square_pixels: bool = False
    top_field_first: bool | None = None  # None: from each frame's flags

    @classmethod
    def choose(cls, mode: str, square_pixels: bool, video: VideoInfo) -> Picture:
        """Resolve `--deinterlace MODE` against a probed video (`probe.VideoInfo`)."""
        if mode not in DEINTERLACE_MODES:
            raise InputError(f"--deinterlace must be one of {', '.join(DEINTERLACE_MODES)}")
        steady = video.frame_rate and not video.vfr  # decimate counts in frames
        if mode == "auto":
            film = video.telecined and steady
            mode = "ivtc" if film else "frame" if video.interlaced else "off"
        if mode == "ivtc" and not steady:
            raise InputError("--deinterlace ivtc needs a constant frame rate")
        return cls(mode, square_pixels, top_field_first(video.field_order))

    @property
    def active(self) -> bool:
        return self.deinterlace != "off" or self.square_pixels

    @property
    def frames_per_frame(self) -> int | Fraction:
        """Output frames per source frame on average (the output rate over the source's):
        2 for field, 4/5 for ivtc, else 1. Frame counts come from `frames_out`."""
        return {"field": 2, "ivtc": Fraction(CYCLE - 1, CYCLE)}.get(self.deinterlace, 1)

    def frames_out(self, frames: int) -> int:
        """Exactly how many frames a chunk of `frames` source frames gives: ivtc drops one
        in each whole cycle from the chunk's first frame and keeps a last part-cycle whole."""
        if self.deinterlace == "ivtc":
            return frames - frames // CYCLE
        return frames * self.frames_per_frame

    def time_base(self, source: Fraction) -> Fraction:
        """The output's time base: the source's, halved for field-rate output, quartered for
        ivtc (a film frame lasts 5/4 of a video frame)."""
        return source / {"field": 2, "ivtc": CYCLE - 1}.get(self.deinterlace, 1)

    def size(self, width: int, height: int, sar: Fraction) -> tuple[int, int]:
        """The picture size after this treatment."""
        if not self.square_pixels or sar == 1:
            return width, height
        if sar > 1:
            return max(1, round(width * sar)), height
        return width, max(1, round(height / sar))


def treat(
    frames: Iterable[av.VideoFrame],
    stream: av.VideoStream,
    picture: Picture,
    sar: Fraction,
    before: Sequence[av.VideoFrame] = (),
) -> Iterator[av.VideoFrame]:
    """`frames` through the filter graph `picture` asks for (as they are when it asks for
    nothing). Timestamps are in `picture.time_base(stream.time_base)`: bwdif counts in half the
    input time base, which frame mode puts back in the stream's. `before` (ivtc only): the
    frame shown just before `frames` (the previous chunk's last), whose fields fieldmatch can
    pair with the first frame's, and which decimate compares the first frame with; it does
    not come out."""
    if not picture.active:
        yield from frames
        return
    ctx = stream.codec_context
    parity = {None: "auto", True: "tff", False: "bff"}[picture.top_field_first]
    resample = []
    if picture.square_pixels and sar != 1:
        width, height = picture.size(ctx.width, ctx.height, sar)
        resample = [("scale", f"w={width}:h={height}:flags=lanczos"), ("setsar", "1")]
    time_base = picture.time_base(stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    if picture.deinterlace == "ivtc":
        matching = [  # frames fieldmatch finds no match for are still combed: bwdif those
            ("fieldmatch", f"order={parity}"),
            ("bwdif", f"mode=send_frame:parity={parity}:deint=interlaced"),
        ]
        matched = _filtered(chain(before, frames), _graph(ctx, stream.time_base, rate, matching))
        prior = list(islice(matched, len(before)))
        yield from _decimated(matched, Fraction(rate), time_base, resample, prior[-1:])
        return
    filters = resample
    if picture.deinterlace != "off":
        mode = "send_field" if picture.deinterlace == "field" else "send_frame"
        filters = [("bwdif", f"mode={mode}:parity={parity}:deint=all"), *resample]
    last: list[av.VideoFrame] = []
    for frame in _filtered(frames, _graph(ctx, stream.time_base, rate, filters)):
        yield _retimed(frame, time_base, last)


def _graph(
    template: av.VideoFrame | av.VideoCodecContext,
    time_base: Fraction,
    rate: Fraction | None,
    filters: list[tuple[str, str]],
) -> av.filter.Graph:
    """A configured graph: a buffer of frames shaped like `template`, in `time_base`, at
    `rate` (decimate needs one), then `filters` in a row, then a sink."""
    graph = av.filter.Graph()
    source = graph.add(
        "buffer",
        video_size=f"{template.width}x{template.height}",
        pix_fmt=str(int(av.VideoFormat(template.format.name))),
        time_base=str(time_base),
        frame_rate=str(rate or 0),
        pixel_aspect="1/1",
    )
    nodes = [source, *(graph.add(name, args) for name, args in filters), graph.add("buffersink")]
    graph.link_nodes(*nodes).configure()
    return graph


def _filtered(frames: Iterable[av.VideoFrame], graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    """Push `frames` through `graph`, yielding what comes out as soon as it does."""
    for frame in chain(frames, [None]):
        graph.push(frame)
        while True:
            try:
                yield graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break


def _retimed(frame: av.VideoFrame, time_base: Fraction, last: list[av.VideoFrame]) -> av.VideoFrame:
    """`frame` in `time_base`. The second field of the very last frame comes out of bwdif
    with the first field's time when the frame's duration is unknown to it: placed one field
    later instead, since every time must be distinct."""
    scale = frame.time_base / time_base
    frame.pts = round(frame.pts * scale)
    frame.duration = round((frame.duration or 0) * scale)
    frame.time_base = time_base
    if last and frame.pts <= last[0].pts:
        frame.pts = last[0].pts + (last[0].duration or 1)
    last[:] = [frame]
    return frame


def _decimated(
    matched: Iterator[av.VideoFrame],
    rate: Fraction,
    time_base: Fraction,
    resample: list[tuple[str, str]],
    prior: list[av.VideoFrame],
) -> Iterator[av.VideoFrame]:
    """decimate's 4 of each 5 field-matched frames (video at `rate`), timed as film frames
    from the first one, in `time_base`.

    decimate compares the first frame it gets with itself, finds a perfect duplicate and
    drops it, whatever the cadence. So it gets a lead cycle first, whose 4 frames out are
    thrown away: stand-ins (the first frame with its luma moved, see STAND_IN), ending in the
    frame before (`prior`, field-matched) where there is one; else in a copy of the first
    frame when the cadence repeats the chunk's first frame (read from the next cycle,
    `_repeats_first`) so that decimate drops it, else in one more stand-in."""
    head = list(islice(matched, 2 * CYCLE))
    if not head:
        return
    first = head[0]
    [stand_in] = _filtered([first], _graph(first, first.time_base, rate, [("lutyuv", STAND_IN)]))
    tick = 1 / rate  # one video frame
    start = first.pts * first.time_base
    if prior:
        last = prior[0]
    elif _repeats_first(head):  # a copy of the first frame (the buffer keeps what it is given)
        [last] = _filtered([first], _graph(first, first.time_base, rate, []))
    else:
        last = stand_in
    lead = [stand_in] * (CYCLE - 1) + [last]

    def timed() -> Iterator[av.VideoFrame]:
        for k, frame in enumerate(lead):  # the buffer takes a reference as each is pushed
            frame.pts = round((start - (CYCLE - k) * tick) / first.time_base)
            yield frame

    graph = _graph(first, first.time_base, rate, [("decimate", ""), *resample])
    step = tick * CYCLE / (CYCLE - 1)  # one film frame
    out = _filtered(chain(timed(), head, matched), graph)
    for k, frame in enumerate(islice(out, CYCLE - 1, None)):
        frame.pts = round((start + k * step) / time_base)
        frame.duration = round(step / time_base)
        frame.time_base = time_base
        yield frame


def _repeats_first(head: list[av.VideoFrame]) -> bool:
    """Does the cadence repeat the previous frame in the first frame of each cycle? Read
    from the second cycle of `head`: its first frame is the one most like its predecessor.
    Fewer than two cycles: no."""
    if len(head) < 2 * CYCLE:
        return False
    lumas = [f.to_ndarray(format="gray").astype(np.int16) for f in head[CYCLE - 1 :]]
    diffs = [np.abs(b - a).mean() for a, b in pairwise(lumas)]
    return int(np.argmin(diffs)) == 0
