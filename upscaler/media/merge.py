"""Reassemble upscaled chunks into the final file: stream copy, the source's audio and
subtitles, original timing, colour and rotation, written atomically."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from upscaler.errors import MediaError, OutputError
from upscaler.media.safe_open import open_media, short_reason
from upscaler.media.writer import atomic_output, mp4_options

log = logging.getLogger(__name__)

#: Output suffix -> FFmpeg muxer, and the subtitle codecs that muxer can hold.
CONTAINERS = {
    ".mp4": ("mp4", {"mov_text"}),
    ".m4v": ("mp4", {"mov_text"}),
    ".mov": ("mov", {"mov_text"}),
    ".mkv": (
        "matroska",
        {
            "subrip",
            "srt",
            "ass",
            "ssa",
            "webvtt",
            "mov_text",
            "dvd_subtitle",
            "hdmv_pgs_subtitle",
            "dvb_subtitle",
        },
    ),
}


def output_format(path: str | Path) -> str:
    """The muxer for an output path, or an OutputError naming the supported suffixes."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise OutputError(
            f"{path}: unsupported output container {suffix or '(none)'!r}; "
            f"use one of {', '.join(CONTAINERS)}"
        )
    return CONTAINERS[suffix][0]


def _packets(path: Path, indices: list[int] | None) -> Iterator[av.Packet]:
    with open_media(path) as container:
        streams = (
            [container.streams[i] for i in indices]
            if indices is not None
            else [container.streams.video[0]]
        )
        for packet in container.demux(streams):
            if packet.size:
                yield packet


def _seconds(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * packet.time_base


def _is_mov_text_gap(packet: av.Packet) -> bool:
    return packet.stream.codec_context.name == "mov_text" and bytes(packet) == b"\x00\x00"


def merge_chunks(
    chunk_paths: list[Path],
    source: str | Path,
    output: str | Path,
    rotation: int = 0,
    copy_streams: list[int] | None = None,
) -> None:
    """Concatenate `chunk_paths` (video, stream copy) and mux the source's audio and
    subtitle streams (`copy_streams`: their indices; default all of them) into `output`."""
    output, source = Path(output), Path(source)
    muxer = output_format(output)
    if not chunk_paths:
        raise MediaError("nothing to merge: no upscaled chunks")
    with open_media(source) as src:
        wanted = copy_streams
        if wanted is None:
            wanted = [s.index for s in src.streams if s.type in ("audio", "subtitle")]
        templates = [src.streams[i] for i in wanted]
        allowed_subs = CONTAINERS[output.suffix.lower()][1]
        for stream in templates:
            if stream.type == "subtitle" and stream.codec_context.name not in allowed_subs:
                raise OutputError(
                    f"subtitle stream {stream.index} ({stream.codec_context.name}) cannot be "
                    f"stored in {output.suffix}; write .mkv instead"
                )
        with open_media(chunk_paths[0]) as first:
            video_template = first.streams.video[0]
            with atomic_output(output) as tmp:
                mp4 = muxer in ("mp4", "mov")
                options = mp4_options(video_template.time_base, faststart=True) if mp4 else {}
                with av.open(str(tmp), "w", format=muxer, options=options) as out:
                    video = out.add_stream_from_template(video_template)
                    if rotation:
                        video.set_display_rotation(rotation)
                    copies = {s.index: out.add_stream_from_template(s) for s in templates}
                    for s in templates:
                        copies[s.index].time_base = s.time_base
                        copies[s.index].metadata.update(s.metadata)
                        copies[s.index].disposition = s.disposition
                    _mux_all(out, video, copies, chunk_paths, source, wanted)


def _mux_all(out, video, copies, chunk_paths, source, wanted) -> None:
    def video_packets() -> Iterator[av.Packet]:
        for path in chunk_paths:
            yield from _packets(path, None)

    streams = [video_packets()]
    if wanted:
        streams.append(_packets(source, wanted))
    last_dts: Fraction | None = None
    try:
        for packet in heapq.merge(*streams, key=_seconds):
            if packet.stream.type == "video":
                dts = _seconds(packet)
                if last_dts is not None and dts <= last_dts and packet.dts is not None:
                    # Chunks encoded apart can repeat a decode time at the seam.
                    packet.dts = int(last_dts / packet.time_base) + 1
                    dts = _seconds(packet)
                last_dts = dts
                packet.stream = video
            elif _is_mov_text_gap(packet):
                continue  # the MP4 muxer writes its own empty samples between cues
            else:
                packet.stream = copies[packet.stream.index]
            out.mux(packet)
    except av.error.FFmpegError as exc:
        raise MediaError(f"muxing the output failed ({short_reason(exc)})") from None
