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
from upscaler.media.writer import atomic_output, can_hold, mp4_options

log = logging.getLogger(__name__)

#: Output suffix -> FFmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Matroska muxer options: timestamps below zero (AAC priming, which the source's edit list
#: skips) are written as they are, not by shifting the whole file (FFmpeg's default for a
#: container without negative times). A Matroska cluster starts at zero or later, and a block
#: is stored relative to it in signed 16-bit milliseconds, so times down to -32.768 s fit;
#: RFC 9559 (Block Timestamps) says a frame with a negative time is decoded but not played,
#: which is what the source's edit list asks for.
KEEP_TIMES = {"avoid_negative_ts": "disabled"}
#: What audio the output container cannot hold is transcoded to: AAC (every container above
#: holds it) at this many bits per second per channel.
AUDIO_FALLBACK = ("aac", 96_000)


def output_format(path: str | Path) -> str:
    """The muxer for an output path, or an OutputError naming the supported suffixes."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise OutputError(
            f"{path}: unsupported output container {suffix or '(none)'!r}; "
            f"use one of {', '.join(CONTAINERS)}"
        )
    return CONTAINERS[suffix]


def plan_streams(streams: list[av.stream.Stream], output: Path) -> dict[int, str]:
    """How each audio/subtitle stream gets into `output`: "copy" (bit for bit) where the
    container holds the codec, "transcode" (audio only: AAC, with a notice), else an
    OutputError naming a container that can hold it; "drop" (with a notice) for an audio
    stream without parameters, which only a damaged file has. See docs/FORMATS.md."""
    muxer = output_format(output)
    plan = {}
    for stream in streams:
        codec = stream.codec_context.codec.canonical_name
        if stream.type == "audio" and not stream.codec_context.channels:
            plan[stream.index] = "drop"  # no parameters: a damaged file's empty stream
            log.warning("audio stream #%d (%s) has no channels; left out", stream.index, codec)
        elif can_hold(muxer, stream) and not (muxer == "mp4" and codec.startswith("pcm_")):
            plan[stream.index] = "copy"  # (PCM in MP4 is too new for most players)
        elif stream.type == "audio":
            plan[stream.index] = "transcode"
            rate = AUDIO_FALLBACK[1] * stream.codec_context.channels // 1000
            log.warning(
                "audio stream #%d (%s) cannot be stored in %s; transcoding it to AAC %d kb/s",
                stream.index, codec, output.suffix, rate,
            )  # fmt: skip
        else:
            fits = [sfx for sfx, fmt in CONTAINERS.items() if can_hold(fmt, stream)]
            hint = f"write {fits[0]} instead" if fits else "drop it from the source first"
            raise OutputError(
                f"{stream.type} stream #{stream.index} ({codec}) cannot be stored in "
                f"{output.suffix}; {hint}"
            )
    return plan


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
        plan = plan_streams([src.streams[i] for i in wanted], output)
        wanted = [i for i in wanted if plan[i] != "drop"]
        templates = [src.streams[i] for i in wanted]
        with open_media(chunk_paths[0]) as first:
            video_template = first.streams.video[0]
            mp4 = muxer in ("mp4", "mov")
            options = mp4_options(video_template.time_base, faststart=True) if mp4 else KEEP_TIMES
            with atomic_output(output) as tmp:
                try:
                    out = av.open(str(tmp), "w", format=muxer, options=options)
                    with out:  # closing writes the trailer, which can fail too
                        video = out.add_stream_from_template(video_template)
                        if video_template.guessed_rate:
                            # Matroska's default frame duration; without it the muxer writes
                            # one tick of the chunk's time base (12800 "fps"). The chunk's
                            # average is skewed by its B-frame delay, its guessed rate is not.
                            video.codec_context.framerate = video_template.guessed_rate
                        if rotation:
                            video.set_display_rotation(rotation)
                        _carry_metadata(src, out, video)
                        copies = {s.index: _output_stream(out, s, plan[s.index]) for s in templates}
                        encode = {
                            i: _AudioTranscoder(copies[i]) for i in wanted if plan[i] == "transcode"
                        }
                        _mux_all(out, video, copies, encode, chunk_paths, source, wanted)
                except av.error.FFmpegError as exc:
                    raise MediaError(
                        f"writing {output.name} failed ({short_reason(exc)})"
                    ) from None


#: Tags each muxer writes for itself (or that describe the old file, not the new one).
_OWN_TAGS = {
    "encoder",
    "major_brand",
    "minor_version",
    "compatible_brands",
    "handler_name",
    "vendor_id",
    "duration",
}


def _tags(metadata: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in metadata.items()
        if k.lower() not in _OWN_TAGS
        and not k.upper().startswith(("_STATISTICS", "NUMBER_OF"))
        and k.upper() != "BPS"
    }


def _carry_metadata(
    src: av.container.InputContainer, out: av.container.OutputContainer, video: av.VideoStream
) -> None:
    """What people miss when it is lost: the file's tags (creation time, title...), the video
    stream's (timecode, language) and the chapters. Audio and subtitle tags (language, title)
    go with their streams (`_output_stream`)."""
    out.metadata.update(_tags(src.metadata))
    tags = _tags(src.streams.video[0].metadata)
    if out.format.name in ("mp4", "mov") and tags.pop("timecode", None):
        # their timecode track needs the stream's frame rate, which PyAV cannot set on a copy
        log.warning("the source's timecode is not carried into MP4/MOV; write .mkv to keep it")
    video.metadata.update(tags)
    chapters = src.chapters()
    if chapters:
        out.set_chapters(chapters)


def _output_stream(
    out: av.container.OutputContainer, stream: av.stream.Stream, how: str
) -> av.stream.Stream:
    """The output twin of a source audio/subtitle stream: a stream copy or an AAC encoder,
    with the source's metadata (language, title) and disposition."""
    if how == "copy":
        twin = out.add_stream_from_template(stream)
        twin.time_base = stream.time_base
    else:
        ctx = stream.codec_context
        # "2 channels" (no order) is what ASF and AVI often say; the encoder wants an order
        unordered = ctx.layout.name.endswith("channels")
        layout = av.AudioLayout(f"{ctx.channels}c") if unordered else ctx.layout
        twin = out.add_stream(AUDIO_FALLBACK[0], rate=ctx.sample_rate, layout=layout)
        twin.bit_rate = AUDIO_FALLBACK[1] * ctx.channels
    twin.metadata.update(_tags(stream.metadata))
    twin.disposition = stream.disposition
    return twin


class _AudioTranscoder:
    """Decode one source audio stream and encode it again. Timestamps are counted in samples
    from the stream's first packet: decoders with a delay (WMA) hand back frames with late or
    missing timestamps, and the encoder's flush packets carry none. A packet that does not
    decode (a damaged file) is skipped, leaving a gap as long as the packet, with a notice."""

    def __init__(self, stream: av.AudioStream) -> None:
        self.stream = stream
        self.rate = stream.codec_context.sample_rate
        self.next: int | None = None
        self.last: av.Packet | None = None
        self.decoder: av.AudioCodecContext | None = None
        self.skipped = 0

    def _stamped(self, packets: list[av.Packet]) -> list[av.Packet]:
        for packet in packets:
            if packet.pts is None and self.last is not None:
                packet.pts = packet.dts = self.last.pts + (self.last.duration or 0)
            self.last = packet
        return packets

    def _frames(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        encoded = []
        for frame in frames:
            frame.pts, frame.time_base = self.next, Fraction(1, self.rate)
            self.next += frame.samples
            encoded += self.stream.encode(frame)
        return encoded

    def encode(self, packet: av.Packet) -> list[av.Packet]:
        if self.next is None:
            self.next = round((packet.pts or 0) * packet.time_base * self.rate)
            self.decoder = packet.stream.codec_context
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            self.skipped += 1
            self.next += round((packet.duration or 0) * packet.time_base * self.rate)
            return []
        return self._stamped(self._frames(frames))

    def flush(self) -> list[av.Packet]:
        """The decoder's and then the encoder's buffered tail."""
        if self.skipped:
            log.warning("skipped %d damaged audio packet(s) while transcoding", self.skipped)
        tail = self._frames(self.decoder.decode(None)) if self.decoder is not None else []
        return self._stamped(tail + self.stream.encode(None))


def _mux_all(out, video, copies, encode, chunk_paths, source, wanted) -> None:
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
            elif packet.stream.index in encode:
                out.mux(encode[packet.stream.index].encode(packet))
                continue
            else:
                packet.stream = copies[packet.stream.index]
            out.mux(packet)
        for transcoder in encode.values():
            out.mux(transcoder.flush())
    except av.error.FFmpegError as exc:
        raise MediaError(f"muxing the output failed ({short_reason(exc)})") from None
