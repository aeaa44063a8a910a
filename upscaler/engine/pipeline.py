"""Upscale one chunk file: decode -> batch -> model -> encode, overlapped in threads.

Bounded queues between the stages keep memory flat however long the chunk is; an error in
any stage stops the others and is re-raised in the caller's thread. A multi-frame model gets
a sliding window of frames, reaching into the adjacent chunk files (`engine.window`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import torch

from upscaler.engine.colour import code_scale, matrix_name, to_codes
from upscaler.engine.encoder import add_encoder
from upscaler.engine.runner import Planes, Upscaler
from upscaler.engine.window import Window, context_frames, sliding_windows, stack_luma
from upscaler.errors import InputError, LimitExceededError, MediaError
from upscaler.media.filters import Picture
from upscaler.media.frames import (
    DecodedFrame,
    bit_depth,
    decode_frames,
    engine_pix_fmt,
    is_full_range,
    last_frame,
    planes_to_frame,
)
from upscaler.media.limits import Limits
from upscaler.media.probe import Colour, sample_aspect
from upscaler.media.safe_open import open_media, short_reason
from upscaler.media.writer import EncodeSettings, atomic_output, mp4_options, output_pix_fmt

_DONE = object()
T = TypeVar("T")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ChunkResult:
    """What upscaling one chunk did."""

    frames: int
    seconds: float
    width: int
    height: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Stage(threading.Thread):
    """A daemon thread that runs `work`, remembering any exception for the caller."""

    def __init__(self, work: Callable[[], None], name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self._stop_all = stop
        self._finished = threading.Event()
        self._launched = False
        self.error: BaseException | None = None

    def start(self) -> None:
        # Marked before the OS thread exists: a Ctrl-C inside `Thread.start()` (it waits for
        # the new thread) leaves a running thread that `wait` must still wait for.
        self._launched = True
        try:
            super().start()
        except RuntimeError:  # the thread could not be created: nothing to wait for
            self._launched = False
            raise

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc
            self._stop_all.set()
        finally:
            self._finished.set()

    def wait(self) -> None:
        """Block until the stage has ended; safe to interrupt with Ctrl-C.

        Not `join()` alone: on CPython <= 3.11 a KeyboardInterrupt inside `join()` can mark a
        running thread as stopped (python/cpython#90882), so a later `join()` returns at once,
        the output container is closed under the still-encoding thread, and the process
        crashes with SIGSEGV at exit. An Event wait has no such state to corrupt.
        """
        if self._launched:
            self._finished.wait()
            self.join()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(q: queue.Queue, stop: threading.Event) -> Iterator:
    while True:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if item is _DONE:
            return
        yield item


def to_planes(frames: list[DecodedFrame], bits: int) -> Planes:
    """Stack a batch of decoded frames into normalised float planes.

    One float32 allocation per plane, filled by torch's (multithreaded) integer->float copy
    and divided in place: no float64 or intermediate float arrays."""
    scale = code_scale(bits)
    stacked = []
    for i in range(len(frames[0].planes)):
        first = frames[0].planes[i]
        plane = torch.empty((len(frames), 1, *first.shape), dtype=torch.float32)
        for j, frame in enumerate(frames):
            plane[j, 0].copy_(torch.from_numpy(frame.planes[i]))
        stacked.append(plane.div_(scale))
    if len(stacked) == 1:
        return Planes(stacked[0], None, None)
    return Planes(stacked[0], stacked[1], stacked[2])


def from_planes(planes: Planes, bits: int) -> list[list[np.ndarray]]:
    """Planes -> per-frame lists of integer planes. Float planes are rounded and clamped
    here (`to_codes`, by torch: multithreaded, one temporary); code planes, as
    `Upscaler.upscale(..., bits=)` returns them, are used as they are (no copy)."""
    arrays = [
        (p if not p.is_floating_point() else to_codes(p, bits))[:, 0].numpy()
        for p in (planes.y, planes.cb, planes.cr)
        if p is not None
    ]
    if bits > 8:
        arrays = [a.view(np.uint16) for a in arrays]
    return [[a[i] for a in arrays] for i in range(arrays[0].shape[0])]


def upscale_group(
    upscaler: Upscaler, group: list[DecodedFrame], matrix: str, full_range: bool, bits: int
) -> list[list[np.ndarray]]:
    """A batch of decoded frames -> per-frame upscaled integer planes: through the fused
    uint8 session where it applies (`Upscaler.fused`), else floats through `upscale`."""
    fused = upscaler.fused(tuple(p.shape for p in group[0].planes), len(group), bits)
    if fused is not None:
        return fused([frame.planes for frame in group])
    return from_planes(upscaler.upscale(to_planes(group, bits), matrix, full_range, bits), bits)


def _batches(frames: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _window_inputs(group: list[Window], bits: int) -> tuple[list[DecodedFrame], Planes]:
    """A batch of windows -> (its centre frames, planes whose Y is the stacked window)."""
    frames = [frame for frame, _ in group]
    planes = to_planes(frames, bits)
    planes.y = stack_luma(group, bits)
    return frames, planes


@dataclass(frozen=True)
class Neighbours:
    """The chunk files around a chunk, for multi-frame models and inverse telecine: `before`
    in display order (the nearest last), `after` (the nearest first). Empty at the ends of
    the video."""

    before: Sequence[Path] = ()
    after: Sequence[Path] = ()


def neighbour_reach(upscaler: Upscaler, picture: Picture) -> tuple[int, int]:
    """How many chunks on each side `upscale_chunk` reads (before, after): a window model
    `radius` frames across each border (a chunk holds at least one frame), inverse telecine
    the frame shown just before the chunk. For a caller that must fetch them (the endpoint)."""
    radius = upscaler.radius
    return max(radius, int(picture.deinterlace == "ivtc")), radius


def upscale_chunk(
    src: str | Path,
    dst: str | Path,
    upscaler: Upscaler,
    settings: EncodeSettings | None = None,
    batch: int = 4,
    progress: Progress | None = None,
    limits: Limits | None = None,
    picture: Picture | None = None,
    neighbours: Neighbours | None = None,
) -> ChunkResult:
    """Upscale every frame of the video file `src` into `dst` (MP4, written atomically).

    Timestamps (the stream's own time base, VFR included), colour tags and bit depth are
    kept; the output is exactly `scale` times the input size (after `picture`: deinterlaced,
    or resampled to square pixels). A multi-frame model reads `upscaler.radius` frames of
    `neighbours` on each side; without them the chunk's own first/last frames repeat.
    """
    settings = settings or EncodeSettings()
    started = time.perf_counter()
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=batch * 2)
    upscaled: queue.Queue = queue.Queue(maxsize=batch * 2)
    limits = limits or Limits.from_env()
    with open_media(src, limits) as container, atomic_output(Path(dst)) as tmp:
        if not container.streams.video:
            raise InputError(f"{src}: no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.width * ctx.height > limits.max_input_pixels:
            raise LimitExceededError(
                f"{src}: {ctx.width}x{ctx.height} is over the limit of "
                f"{limits.max_input_pixels} pixels"
            )
        if ctx.width * ctx.height * upscaler.scale**2 > limits.max_output_pixels:
            raise LimitExceededError(
                f"{src}: the x{upscaler.scale} output is over the limit of "
                f"{limits.max_output_pixels} pixels"
            )
        pix_fmt = engine_pix_fmt(ctx.pix_fmt or "yuv420p")
        picture = picture or Picture()
        sar = sample_aspect(stream)
        in_width, in_height = picture.size(ctx.width, ctx.height, sar)
        width, height = in_width * upscaler.scale, in_height * upscaler.scale
        out_fmt = output_pix_fmt(pix_fmt, settings.encoder, (width, height))
        bits = bit_depth(pix_fmt)
        colour = Colour(
            int(ctx.color_primaries),
            int(ctx.color_trc),
            int(ctx.colorspace),
            int(ctx.color_range),
        )
        matrix = matrix_name(colour.matrix, ctx.height)
        full_range = is_full_range(pix_fmt, colour.range)
        count = 0

        declared = (in_height, in_width)

        around = neighbours or Neighbours()

        def decode() -> None:
            try:
                before = []  # inverse telecine pairs fields and finds repeats across the seam
                if picture.deinterlace == "ivtc" and around.before:
                    before = [f for f in [last_frame(around.before[-1], limits)] if f]
                for frame in decode_frames(container, pix_fmt, picture, before):
                    if frame.planes[0].shape != declared:
                        got = frame.planes[0].shape
                        raise MediaError(
                            f"{src}: the frame size changes mid-stream "
                            f"({declared[1]}x{declared[0]} -> {got[1]}x{got[0]}); not supported"
                        )
                    _put(decoded, frame, stop)
                    if stop.is_set():
                        return
            except av.error.FFmpegError as exc:
                raise MediaError(f"{src}: corrupt video ({short_reason(exc)})") from None
            finally:
                _put(decoded, _DONE, stop)

        time_base = picture.time_base(stream.time_base)  # halved for field-rate output
        rate = stream.average_rate * picture.frames_per_frame if stream.average_rate else None
        options = mp4_options(time_base)
        with av.open(str(tmp), "w", format="mp4", options=options) as out:
            encoder, out_fmt = add_encoder(
                out,
                settings,
                width,
                height,
                out_fmt,
                time_base,
                rate,
                colour,
                Fraction(1) if picture.square_pixels else sar,
                gpu=upscaler.device.type == "cuda",
            )

            def encode() -> None:
                try:
                    for planes, pts, duration in _drain(upscaled, stop):
                        frame = planes_to_frame(planes, pix_fmt)
                        if out_fmt != pix_fmt:
                            frame = frame.reformat(format=out_fmt)
                        frame.pts, frame.duration = pts, duration
                        frame.time_base = time_base
                        out.mux(encoder.encode(frame))
                        if progress:
                            progress(1)
                    out.mux(encoder.encode(None))
                except av.error.FFmpegError as exc:
                    raise MediaError(f"{src}: encoding failed ({short_reason(exc)})") from None

            radius = upscaler.radius
            if radius:
                context = (
                    context_frames(ns, radius, last, pix_fmt, picture, limits)
                    for ns, last in ((around.before, True), (around.after, False))
                )
                windows = sliding_windows(_drain(decoded, stop), radius, *context)
                steps = (
                    (group, from_planes(upscaler.upscale(planes, matrix, full_range, bits), bits))
                    for group, planes in (_window_inputs(g, bits) for g in _batches(windows, batch))
                )
            else:
                steps = (
                    (group, upscale_group(upscaler, group, matrix, full_range, bits))
                    for group in _batches(_drain(decoded, stop), batch)
                )
            stages = [_Stage(decode, "decode", stop), _Stage(encode, "encode", stop)]
            try:
                for stage in stages:
                    stage.start()
                for group, result in steps:
                    for frame, planes in zip(group, result, strict=True):
                        _put(upscaled, (planes, frame.pts, frame.duration), stop)
                    count += len(group)
                _put(upscaled, _DONE, stop)
                stages[1].wait()
            finally:
                stop.set()
                for stage in stages:
                    stage.wait()
            for stage in stages:
                if stage.error is not None:
                    raise stage.error
        if count == 0:
            raise MediaError(f"{src}: no frame could be decoded")
    return ChunkResult(count, time.perf_counter() - started, width, height)
