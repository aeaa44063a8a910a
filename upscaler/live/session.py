"""One live run: source thread -> bounded queue -> scheduler -> web view and/or MPEG-TS out.

Threads: the source demuxes, decodes and paces frames into a `FrameQueue` (audio packets go
straight to the output); the calling thread runs the `Scheduler` over the queue; the output
and the web server have their own threads. Nothing waits on the viewer or the pipe reader
for long: the queue drops its oldest frame when full and the scheduler degrades late frames.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from upscaler.engine.pipeline import upscale_group
from upscaler.engine.runner import Upscaler
from upscaler.errors import InputError, ModelError
from upscaler.live.pacing import (
    DROP,
    Clock,
    FrameQueue,
    MonotonicClock,
    Scheduler,
    Stats,
    Tier,
    serve_one,
)
from upscaler.live.source import (
    Pacer,
    SourceFrame,
    VideoInfo,
    demux_live,
    open_source,
    source_kind,
    video_info,
)
from upscaler.media.frames import DecodedFrame
from upscaler.media.safe_open import open_media


def bicubic_planes(planes: list[np.ndarray], scale: int) -> list[np.ndarray]:
    """The cheap tier: each plane resized by PIL's bicubic (a few ms at 480p)."""
    h, w = planes[0].shape
    out_h, out_w = h * scale, w * scale
    result = []
    for i, plane in enumerate(planes):
        ph, pw = plane.shape
        size = (out_w, out_h) if i == 0 else (-(-out_w * pw // w), -(-out_h * ph // h))
        if plane.dtype == np.uint8:
            result.append(np.asarray(Image.fromarray(plane).resize(size, Image.BICUBIC)))
        else:
            img = Image.fromarray(plane.astype(np.float32), mode="F").resize(size, Image.BICUBIC)
            top = float(np.iinfo(plane.dtype).max)
            result.append(np.asarray(img).round().clip(0, top).astype(plane.dtype))
    return result


def model_tier(upscaler: Upscaler, info: VideoInfo) -> Tier:
    """A tier running `upscaler` on one frame at a time (batch 1: lowest latency), through
    the pipeline's model step (the fused uint8 session where it applies)."""

    def run(frame: SourceFrame) -> list[np.ndarray]:
        decoded = DecodedFrame(frame.planes, frame.pts, frame.duration)
        return upscale_group(upscaler, [decoded], info.matrix, info.full_range, info.bits)[0]

    return Tier(upscaler.name, run)


def single_frame(upscaler: Upscaler) -> Upscaler:
    """`upscaler`, refused when its model reads a window of frames: live mode sees each frame
    as it arrives, and waiting for the next ones would add their interval to every frame's
    latency (feeding a lone frame repeated instead would run the model outside its training)."""
    if upscaler.radius:
        raise ModelError(
            f"{upscaler.name} reads a window of {upscaler.model.window} frames; live mode runs "
            "single-frame models only (e.g. fast)"
        )
    return upscaler


def bicubic_tier(scale: int) -> Tier:
    return Tier("bicubic-pil", lambda frame: bicubic_planes(frame.planes, scale))


def warm_up(tiers: list[Tier], info: VideoInfo, rounds: int = 3) -> None:
    """Run every tier on a blank frame of the source's size to set its starting cost: the
    lowest of `rounds` (the first run of a fresh session also pays for building it)."""
    dtype = np.uint16 if info.bits > 8 else np.uint8
    probe = _blank_frame(info, dtype)
    for tier in tiers:
        for _ in range(rounds):
            started = time.monotonic()
            tier.run(probe)
            tier.measured(time.monotonic() - started)


def _model_step(upscaler: Upscaler, info: VideoInfo) -> str:
    """How the model tier runs (for the summary): 'fused/RUNTIME' (one uint8 session of
    ONNX Runtime or OpenVINO) or the runtime of the separate stages ('torch', 'onnx', ...)."""
    probe = _blank_frame(info, np.uint8)
    shapes = tuple(p.shape for p in probe.planes)
    runtime = upscaler.runtime.name_for((1, 1 if upscaler.channels == "y" else 3, *shapes[0]))
    if upscaler.fused(shapes, 1, info.bits) is not None:
        return f"fused/{runtime}"
    return runtime


def _blank_frame(info: VideoInfo, dtype: Any) -> SourceFrame:
    import av

    from upscaler.media.frames import planes_to_frame

    frame = av.VideoFrame(info.width, info.height, info.pix_fmt)
    planes = [np.full((p.height, p.width), 1 << (info.bits - 1), dtype) for p in frame.planes]
    planes_to_frame(planes, info.pix_fmt)  # validates the shapes
    return SourceFrame(planes, 0, 0, 0.0, -1)


def live_threads(threads: int | None) -> int:
    """Model threads for live mode: every physical core. The model runs one frame at a time
    and, on ONNX Runtime, its threads sleep (no spinning) while the source decodes and the
    encoder works, so leaving a core idle for them only made the model too slow for 1080p
    output on 2 cores (~53 CPU ms a frame for `fast` against a 40 ms frame interval)."""
    if threads:
        return threads
    import psutil

    return psutil.cpu_count(logical=False) or 1


@dataclass
class LiveOptions:
    source: str
    model: str = "fast"
    scale: int = 2
    device: str = "auto"
    fallback: str | None = None
    budget: float = 0.25
    queue: int = 8
    duration: float | None = None
    loop: bool = False
    serve: str | None = None
    out: str | None = None
    threads: int | None = None
    allow_drop: bool = True
    preset: str = "auto"
    runtime: str = "auto"


class LiveSession:
    """Set up with `LiveOptions`, then `run()`; `url` is the page once serving."""

    def __init__(self, options: LiveOptions, clock: Clock | None = None, guard: Any = None):
        self.options = options
        self.clock = clock or MonotonicClock()
        self.guard = guard
        self.stop = threading.Event()
        self.url: str | None = None
        self.info: VideoInfo | None = None
        if options.loop and source_kind(options.source) != "file":
            raise InputError("--loop only works with a file source")

    def run(self, announce: Any = None) -> dict[str, Any]:
        """Run until the source ends, `duration` passes or `stop` is set; the summary."""
        opts = self.options
        with open_source(opts.source, self.guard) as container:
            info = self.info = video_info(container)
            audio_in = container.streams.audio[0] if container.streams.audio else None
            upscaler = single_frame(
                Upscaler(opts.model, opts.scale, opts.device, runtime=opts.runtime)
            )
            tiers = [model_tier(upscaler, info)]
            if opts.fallback:
                fallback = single_frame(
                    Upscaler(opts.fallback, opts.scale, opts.device, runtime=opts.runtime)
                )
                tiers.append(model_tier(fallback, info))
            tiers.append(bicubic_tier(opts.scale))
            if upscaler.device.type == "cpu":
                torch.set_num_threads(live_threads(opts.threads))
            warm_up(tiers, info)
            stats = Stats(self.clock)
            scheduler = Scheduler(tiers, opts.budget, self.clock, opts.allow_drop, stats=stats)
            queue = FrameQueue(opts.queue)
            hub = server = output = None
            out_handle = None
            if opts.serve:
                from upscaler.live.server import FrameHub, LiveServer

                hub = FrameHub(info.pix_fmt)
                labels = {
                    "src": f"{info.width}x{info.height}",
                    "dst": f"{info.width * opts.scale}x{info.height * opts.scale}",
                    "model": opts.model,
                    "scale": str(opts.scale),
                }
                server = LiveServer(opts.serve, hub, lambda: self._stats(stats, hub), labels)
                server.start()
                self.url = server.url
            if opts.out:
                from upscaler.live.output import TsOutput

                out_handle = sys.stdout.buffer if opts.out == "-" else open(opts.out, "wb")  # noqa: SIM115
                output = TsOutput(out_handle, info, opts.scale, audio_in, preset=opts.preset)
            if announce:
                announce(self)
            feeder = _Feeder(self, container, info, queue, stats, output)
            feeder.start()
            try:
                self._work(queue, scheduler, hub, output, feeder)
            except KeyboardInterrupt:
                pass
            finally:
                self.stop.set()
                feeder.join(timeout=10)
                if hub is not None:
                    hub.finish()
                if output is not None:
                    output.close()
                if out_handle is not None and out_handle is not sys.stdout.buffer:
                    out_handle.close()
                if server is not None:
                    server.close()
            if feeder.error is not None:
                raise feeder.error
        summary = self._stats(stats, hub)
        summary.update(
            source=opts.source,
            model=opts.model,
            scale=opts.scale,
            size=f"{info.width}x{info.height}",
            budget_ms=round(opts.budget * 1000),
            torch_threads=torch.get_num_threads(),
            model_step=_model_step(upscaler, info),
            tier_cost_ms={t.name: round(t.cost * 1000, 1) for t in tiers},
            reanchored=feeder.pacer.reanchored,
        )
        if output is not None:
            summary.update(out_frames=output.frames, out_audio_packets=output.audio_packets)
        return summary

    def _stats(self, stats: Stats, hub: Any) -> dict[str, Any]:
        snap = stats.snapshot()
        snap["finished"] = bool(hub.finished) if hub is not None else self.stop.is_set()
        return snap

    def _work(self, queue: FrameQueue, scheduler: Scheduler, hub, output, feeder) -> None:
        while not self.stop.is_set():
            if output is not None and output.error is not None:
                return  # the reader went away (or writing failed: close() says which)
            result = serve_one(queue, scheduler, timeout=0.2)
            if result is None:
                if queue.closed and len(queue) == 0:
                    return
                continue
            head, tier, planes, _latency = result
            if tier == DROP:
                continue
            frame: SourceFrame = head.item
            if hub is not None:
                hub.publish(frame.planes, planes)
            if output is not None:
                output.video(planes, frame.pts, frame.duration)


class _Feeder(threading.Thread):
    """The source thread: demux, decode, pace into the queue; loops a file if asked."""

    def __init__(self, session: LiveSession, container, info, queue, stats, output) -> None:
        super().__init__(name="live-source", daemon=True)
        self.session, self.container, self.info = session, container, info
        self.queue, self.stats, self.output = queue, stats, output
        self.pacer = Pacer(session.clock)
        self.error: BaseException | None = None

    def run(self) -> None:
        opts = self.session.options
        try:
            offset = self._play(self.container, 0.0)
            for _ in range(1_000_000 if opts.loop else 0):
                if self.session.stop.is_set():
                    break
                if opts.duration is not None and offset >= opts.duration:
                    break
                with open_media(opts.source) as container:
                    end = self._play(container, offset)
                if end <= offset:
                    break
                offset = end
        except BaseException as exc:
            self.error = exc
        finally:
            self.queue.close()

    def _play(self, container, offset: float) -> float:
        opts = self.session.options
        video_tb = self.info.time_base
        audio = container.streams.audio[0] if container.streams.audio else None
        video_shift = round(offset / video_tb)
        audio_shift = round(offset / audio.time_base) if audio is not None else 0
        end = offset
        remaining = None if opts.duration is None else opts.duration - offset
        for kind, item, arrival in demux_live(
            container,
            self.info,
            self.pacer,
            audio=self.output is not None,
            max_seconds=remaining,
            stop=self.session.stop,
            offset=offset,
        ):
            if kind == "audio":
                if audio_shift:
                    item.pts += audio_shift
                    if item.dts is not None:
                        item.dts += audio_shift
                self.output.audio(item)
                continue
            item.pts += video_shift
            duration = float(item.duration * video_tb) if item.duration else 0.0
            end = max(end, item.seconds + (duration or 1 / float(self.info.rate or 30)))
            self.stats.arrived()
            if self.queue.put(item, arrival) is not None:
                self.stats.dropped(late=False)
        return end
