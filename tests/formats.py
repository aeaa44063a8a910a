"""Clips of the legacy and broadcast families people actually have, made with PyAV's own
encoders the way those devices and tools make them (tags, sizes, audio codecs, aspect).

Each clip is tiny (a few frames at the smallest size its codec allows) so the whole set is
made once per test session in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.clips import ClipSpec, make_clip, tone
from upscaler.media.sample import render_frames


@dataclass(frozen=True)
class Family:
    """One family of files: container, video and audio codecs, size, aspect, interlacing."""

    container: str
    suffix: str
    codec: str
    width: int
    height: int
    rate: Fraction
    pix_fmt: str
    audio: str | None
    audio_rate: int = 48000
    frames: int = 8
    sar: Fraction | None = None
    tag: str | None = None
    interlaced: bool = False  # woven from 2 * frames progressive frames, top field first
    telecined: bool = False  # 3:2 pulldown of frames * 4 / 5 film frames, top field first
    phase: int = 0  # where in the 5-frame cycle a telecined clip starts
    options: dict[str, str] = field(default_factory=dict)

    @property
    def display_aspect(self) -> float:
        return float(self.width * (self.sar or 1) / self.height)


NTSC = Fraction(30000, 1001)
FAMILIES = {
    "dvd-mpeg2-ps-ac3": Family(
        "dvd", ".vob", "mpeg2video", 352, 240, NTSC, "yuv420p", "ac3", sar=Fraction(40, 33),
        options={"bf": "2", "g": "6"},
    ),
    "vcd-mpeg1-mp2": Family(
        "vcd", ".mpg", "mpeg1video", 352, 240, NTSC, "yuv420p", "mp2", 44100,
        sar=Fraction(10, 11), options={"bf": "2", "g": "6"},
    ),
    "dv-avi-pcm": Family(
        "avi", ".avi", "dvvideo", 720, 480, NTSC, "yuv411p", "pcm_s16le", frames=3,
        sar=Fraction(8, 9),
    ),
    "dv-raw-pal": Family(
        "dv", ".dv", "dvvideo", 720, 576, Fraction(25), "yuv420p", "pcm_s16le", frames=3,
        sar=Fraction(16, 15),
    ),
    "xvid-avi-mp3": Family(
        "avi", ".avi", "mpeg4", 176, 144, Fraction(25), "yuv420p", "libmp3lame", 44100,
        tag="XVID", options={"bf": "2", "g": "6"},
    ),
    "divx-avi-mp3": Family(
        "avi", ".avi", "mpeg4", 176, 144, Fraction(25), "yuv420p", "libmp3lame", 44100,
        tag="DX50", sar=Fraction(128, 117),
    ),
    "msmpeg4-avi-mp3": Family(
        "avi", ".avi", "msmpeg4", 176, 144, Fraction(25), "yuv420p", "libmp3lame", 44100
    ),
    "mjpeg-avi-pcm": Family(
        "avi", ".avi", "mjpeg", 176, 144, Fraction(25), "yuvj422p", "pcm_s16le"
    ),
    "cinepak-avi-pcm": Family(
        "avi", ".avi", "cinepak", 176, 144, Fraction(15), "rgb24", "pcm_u8", 22050, frames=4
    ),
    "wmv-asf-wma": Family(
        "asf", ".wmv", "wmv2", 176, 144, Fraction(25), "yuv420p", "wmav2", 44100
    ),
    "flv-sorenson-mp3": Family(
        "flv", ".flv", "flv", 176, 144, Fraction(25), "yuv420p", "libmp3lame", 44100
    ),
    "3gp-h263-aac": Family(
        "3gp", ".3gp", "h263", 176, 144, Fraction(15), "yuv420p", "aac", 16000, frames=6,
        sar=Fraction(12, 11),
    ),
    "prores-mov-pcm": Family(
        "mov", ".mov", "prores_ks", 176, 144, Fraction(24000, 1001), "yuv422p10le",
        "pcm_s16le", frames=4, options={"profile": "2"},
    ),
    "ts-h264-interlaced-ac3": Family(
        "mpegts", ".ts", "libx264", 176, 144, Fraction(25), "yuv420p", "ac3", interlaced=True,
        options={"flags": "+ildct+ilme", "crf": "18"},
    ),
    "ts-mpeg2-interlaced-ac3": Family(
        "mpegts", ".ts", "mpeg2video", 176, 144, Fraction(25), "yuv420p", "ac3",
        interlaced=True, options={"flags": "+ildct+ilme", "qscale": "2"},
    ),
    "webm-vp8-opus": Family(
        "webm", ".webm", "libvpx", 176, 144, Fraction(25), "yuv420p", "libopus"
    ),
    "webm-vp9-opus": Family(
        "webm", ".webm", "libvpx-vp9", 176, 144, Fraction(25), "yuv420p", "libopus",
        options={"deadline": "realtime", "cpu-used": "8"},
    ),
    "mkv-av1-10bit-opus": Family(
        "matroska", ".mkv", "libsvtav1", 176, 144, Fraction(25), "yuv420p10le", "libopus",
        options={"preset": "12"},
    ),
}  # fmt: skip


def woven(width: int, height: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(interlaced frames, progressive truth): each interlaced frame takes its top field from
    progressive frame 2i and its bottom field from frame 2i + 1, as a camera scans them."""
    truth = render_frames(width, height, 2 * frames)
    out = []
    for top, bottom in zip(truth[0::2], truth[1::2], strict=True):
        frame = top.copy()
        frame[1::2] = bottom[1::2]
        out.append(frame)
    return out, truth


def pulldown_fields(frames: int, phase: int = 0) -> list[int]:
    """The film frame of each field of `frames` video frames of 3:2 pulldown, top field
    first, starting `phase` frames into the cycle: film frames A B C D give the fields
    A A B B B C C D D D, paired into video frames as AA BB BC CD DD (two of each five mix two
    film frames)."""
    cycles = -(-(frames + phase) // 5)
    fields = [k for k in range(4 * cycles) for _ in range(2 + k % 2)]
    return fields[2 * phase : 2 * (phase + frames)]


def telecined(
    width: int, height: int, frames: int, phase: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(telecined frames, film truth): progressive film frames at 24000/1001 spread over
    `frames` video frames at 30000/1001 (`pulldown_fields`)."""
    fields = pulldown_fields(frames, phase)
    truth = render_frames(width, height, fields[-1] + 1)
    out = []
    for top, bottom in zip(fields[0::2], fields[1::2], strict=True):
        frame = truth[top].copy()
        frame[1::2] = truth[bottom][1::2]
        out.append(frame)
    return out, truth


def _field_flags(frames: list[av.VideoFrame], rate: Fraction) -> list[av.VideoFrame]:
    """Mark frames interlaced top field first (PyAV frames cannot set the flag themselves)."""
    graph = av.filter.Graph()
    src = graph.add_buffer(
        width=frames[0].width, height=frames[0].height, format=frames[0].format,
        time_base=1 / rate,
    )  # fmt: skip
    graph.link_nodes(src, graph.add("setfield", "tff"), graph.add("buffersink")).configure()
    flagged = []
    for frame in frames:
        graph.push(frame)
        flagged.append(graph.pull())
    return flagged


def make_family_clip(path: Path, fam: Family) -> Path:
    """Encode `fam` into `path` (video, then an audio tone as long as the video)."""
    if fam.interlaced:
        pictures, _ = woven(fam.width, fam.height, fam.frames)
    elif fam.telecined:
        pictures, _ = telecined(fam.width, fam.height, fam.frames, fam.phase)
    else:
        pictures = render_frames(fam.width, fam.height, fam.frames)
    with av.open(str(path), "w", format=fam.container) as out:
        video = out.add_stream(fam.codec, rate=fam.rate)
        video.width, video.height, video.pix_fmt = fam.width, fam.height, fam.pix_fmt
        video.time_base = video.codec_context.time_base = 1 / fam.rate
        if fam.sar:
            video.codec_context.sample_aspect_ratio = fam.sar
        if fam.tag:
            video.codec_tag = fam.tag
        video.options = dict(fam.options)
        if fam.interlaced or fam.telecined:
            video.codec_context.flags |= av.codec.context.Flags.interlaced_dct
        sound = None
        if fam.audio:
            layout = "mono" if fam.audio == "pcm_u8" else "stereo"
            sound = out.add_stream(fam.audio, rate=fam.audio_rate, layout=layout)
            sound.bit_rate = 64000  # WMA and AC-3 refuse to open without one
        frames = [
            av.VideoFrame.from_ndarray(p, format="rgb24").reformat(format=fam.pix_fmt)
            for p in pictures
        ]
        if fam.interlaced or fam.telecined:
            frames = _field_flags(frames, fam.rate)
        for i, frame in enumerate(frames):
            frame.pts, frame.time_base = i, 1 / fam.rate
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            tone(out, sound, float(fam.frames / fam.rate), fam.audio_rate, layout)
    return path


#: Hard-telecined film as on an NTSC DVD: 16 film frames in 20 interlaced video frames.
TELECINED = Family(
    "dvd", ".vob", "mpeg2video", 352, 240, NTSC, "yuv420p", "ac3", frames=20, telecined=True,
    options={"flags": "+ildct+ilme", "b": "8000000"},  # ("qscale" is no codec option)
)  # fmt: skip

TAGS = {"creation_time": "2001-02-03T04:05:06.000000Z", "title": "holiday"}
CHAPTERS = [(0, 200, "one"), (200, 480, "two")]  # milliseconds


def make_tagged_clip(path: Path) -> Path:
    """A MOV clip with what people miss when it is lost: creation time, title, chapters,
    an audio language and a timecode (remuxed from a plain clip: PyAV writes them on mux)."""
    plain = make_clip(path.with_name("plain.mov"), ClipSpec(container="mov"))
    with av.open(str(plain)) as src, av.open(str(path), "w") as out:
        out.metadata.update(TAGS)
        video = out.add_stream_from_template(src.streams.video[0])
        video.metadata["timecode"] = "01:00:00:00"
        audio = out.add_stream_from_template(src.streams.audio[0])
        audio.metadata["language"] = "fra"
        out.set_chapters([
            {"id": i + 1, "start": a, "end": b, "time_base": Fraction(1, 1000),
             "metadata": {"title": t}}
            for i, (a, b, t) in enumerate(CHAPTERS)
        ])  # fmt: skip
        for packet in src.demux():
            if packet.size:
                packet.stream = video if packet.stream.type == "video" else audio
                out.mux(packet)
    return path


def _audio_spans(path) -> list[tuple[Fraction, Fraction]]:
    """(start, end) of each packet of the first audio stream, in seconds."""
    with av.open(str(path)) as container:
        return [
            (p.pts * p.time_base, (p.pts + (p.duration or 0)) * p.time_base)
            for p in container.demux(container.streams.audio[0])
            if p.size and p.pts is not None
        ]


def audio_span(path) -> tuple[float, float]:
    """(seconds from the first audio packet's start to the last one's end, the longest
    packet): containers differ in how they store the last packet's length (Matroska rounds it
    to the default one), so durations are compared to within one packet."""
    spans = _audio_spans(path)
    longest = max(end - start for start, end in spans)
    return float(max(end for _, end in spans) - min(start for start, _ in spans)), float(longest)


def audio_start(path) -> float:
    """The first audio packet's start, in seconds (below zero where AAC priming is)."""
    return float(min(start for start, _ in _audio_spans(path)))
