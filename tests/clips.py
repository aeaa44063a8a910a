"""Generated test clips: real encodes of the sample photo, with the features under test."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from upscaler.media.sample import render_frames


@dataclass
class ClipSpec:
    """What to put in a generated clip."""

    width: int = 96
    height: int = 64
    frames: int = 12
    rate: Fraction = Fraction(25)
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    container: str = "mp4"
    audio: bool = True
    subtitles: bool = False
    vfr: bool = False
    rotation: int = 0
    gop: int = 0  # keyframe interval in frames (0: encoder default)
    colour: tuple[int, int, int, int] = (1, 1, 1, 1)  # primaries, trc, matrix, range
    options: dict[str, str] = field(default_factory=dict)


def frame_times(spec: ClipSpec) -> list[Fraction]:
    """Presentation time of each frame in seconds (irregular when `vfr`)."""
    step = 1 / spec.rate
    times, t = [], Fraction(0)
    for i in range(spec.frames):
        times.append(t)
        t += step * (Fraction(3, 2) if spec.vfr and i % 3 == 2 else 1)
    return times


def make_clip(path: Path, spec: ClipSpec) -> Path:
    """Encode `spec` into `path` and return it."""
    times = frame_times(spec)
    with av.open(str(path), "w", format=spec.container) as out:
        video = out.add_stream(spec.codec, rate=spec.rate)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, spec.pix_fmt
        tb = Fraction(1, 90000) if spec.vfr else 1 / spec.rate
        video.time_base = tb
        video.codec_context.time_base = tb
        ctx = video.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = spec.colour
        options = {"crf": "20", **spec.options}
        if spec.gop:
            options.update(g=str(spec.gop), keyint_min=str(spec.gop), sc_threshold="0")
            if spec.codec == "libx265":
                options["x265-params"] = f"keyint={spec.gop}:min-keyint={spec.gop}:log-level=error"
        elif spec.codec == "libx265":
            options["x265-params"] = "log-level=error"
        video.options = options
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        sub = None
        if spec.subtitles:
            sub = out.add_mux_stream("mov_text" if spec.container == "mp4" else "subrip")
            sub.time_base = Fraction(1, 1000)
        sound = out.add_stream("aac", rate=48000, layout="stereo") if spec.audio else None
        for rgb, t in zip(render_frames(spec.width, spec.height, spec.frames), times, strict=True):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=spec.pix_fmt)
            frame.pts = int(t / tb)
            frame.time_base = tb
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        duration = float(times[-1] + 1 / spec.rate)
        if sound is not None:
            tone(out, sound, duration)
        if sub is not None:
            for i, text in enumerate((b"first line", b"second line")):
                payload = len(text).to_bytes(2, "big") + text if spec.container == "mp4" else text
                packet = av.Packet(payload)
                packet.stream, packet.time_base = sub, Fraction(1, 1000)
                packet.pts = packet.dts = int(i * duration * 500)
                packet.duration = int(duration * 400)
                out.mux(packet)
    return path


def tone(out, stream, seconds: float, rate: int = 48000, layout: str = "stereo") -> None:
    """Encode `seconds` of a 440 Hz tone into the audio `stream` and flush it."""
    block = 1024
    total = int(rate * seconds)
    channels = 1 if layout == "mono" else 2
    for start in range(0, total, block):
        n = min(block, total - start)
        t = np.arange(start, start + n) / rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.stack([wave] * channels), format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts = rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def packets(path: Path, kind: str) -> list[tuple[float | None, bytes]]:
    """(pts in seconds, payload) of every packet of the first stream of `kind`."""
    with av.open(str(path)) as container:
        streams = getattr(container.streams, kind)
        if not streams:
            return []
        stream = streams[0]
        return [
            (float(p.pts * p.time_base) if p.pts is not None else None, bytes(p))
            for p in container.demux(stream)
            if p.size
        ]


def frame_times_of(path: Path) -> list[float]:
    """Presentation times (seconds) of every decoded video frame, in display order."""
    with av.open(str(path)) as container:
        return sorted(float(f.pts * f.time_base) for f in container.decode(video=0))
