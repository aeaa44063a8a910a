"""The unit of work: keyframe-aligned chunks of the video stream, cut by stream copy.

A chunk is a closed run of frames starting at a keyframe. Splitting copies packets (no
re-encode), so it is fast and lossless; each chunk file decodes on its own.

The chunk's container is picked per codec (`chunk_format`): MP4 where it holds the codec, else
MOV (DV, ProRes, Cinepak, H.263...), else NUT (any codec with an AVI or WAV tag), all three with
the stream's exact time base, else Matroska (milliseconds). Chunk files keep the
`.mp4` name of the cloud key layout whatever their container; FFmpeg probes the content.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from upscaler.errors import InputError, LimitExceededError, MediaError
from upscaler.media.limits import Limits
from upscaler.media.probe import MediaInfo, PacketIndex
from upscaler.media.safe_open import open_media, short_reason
from upscaler.media.writer import atomic_output, can_hold, mp4_options


@dataclass(frozen=True)
class ChunkSpec:
    """One chunk: the frames shown in [start_pts, end_pts), decoded from the packets
    [first_packet, first_packet + packet_count) in decode order.

    With closed GOPs those packets are exactly the chunk's frames. An open GOP (DVD MPEG-2,
    Xvid, broadcast H.264) follows its keyframe, in decode order, with B-frames shown before it
    and predicted from the previous GOP: they belong to the previous chunk, whose file then also
    carries the next keyframe and those B-frames (`packet_count` > `frame_count`); the decoder
    of each chunk drops what lies outside its window (see `WINDOW_TAG`).
    """

    index: int
    first_packet: int
    frame_count: int
    start_pts: int
    end_pts: int  # exclusive upper bound of the chunk's presentation times
    start_s: float
    duration_s: float
    packet_count: int = 0  # 0 (plans written before open GOPs were handled): frame_count

    @property
    def name(self) -> str:
        return f"chunk_{self.index:05d}.mp4"

    @property
    def packets(self) -> int:
        return self.packet_count or self.frame_count


#: Container tag of a chunk file: "start,end" in seconds (exact fractions), the presentation
#: times whose frames are the chunk's; decoding drops the others (`frames.decode_frames`).
WINDOW_TAG = "upscaler_window"


def plan_chunks(
    info: MediaInfo, packets: PacketIndex, seconds: float = 10.0, limits: Limits | None = None
) -> list[ChunkSpec]:
    """Cut the video into chunks of about `seconds` each, starting at keyframes."""
    limits = limits or Limits.from_env()
    if not packets.keyframe[0]:
        raise InputError(f"{info.path}: the video does not start with a keyframe")
    tb = info.video.time_base
    step = max(1, int(seconds / tb)) if seconds > 0 else 1 << 62
    starts = [0]
    for i in np.flatnonzero(packets.keyframe)[1:]:
        if packets.pts[i] - packets.pts[starts[-1]] >= step:
            starts.append(int(i))
    if len(starts) > limits.max_chunks:
        raise LimitExceededError(f"{info.path}: {len(starts)} chunks is over {limits.max_chunks}")
    bounds = [*starts, len(packets)]
    end_of_video = int(packets.pts.max() + max(1, packets.duration[np.argmax(packets.pts)]))
    chunks = []
    for index, (first, stop) in enumerate(itertools.pairwise(bounds)):
        start_pts = int(packets.pts[first])  # chunk 0: frames before it are undecodable
        end_pts = int(packets.pts[stop]) if stop < len(packets) else end_of_video
        shown = (packets.pts >= start_pts) & (packets.pts < end_pts)
        last = int(np.flatnonzero(shown).max())  # the last packet a shown frame needs
        if shown[:first].any():
            raise InputError(f"{info.path}: a frame is decoded before the keyframe it follows")
        chunks.append(
            ChunkSpec(
                index=index,
                first_packet=first,
                frame_count=int(shown.sum()),
                start_pts=start_pts,
                end_pts=end_pts,
                start_s=float((start_pts - info.video.start_pts) * tb),
                duration_s=float((end_pts - start_pts) * tb),
                packet_count=max(last + 1, stop) - first,
            )
        )
    return chunks


#: Intermediate containers for chunks, best first: MP4 (what the cloud layout has always
#: used), MOV, NUT (any codec FFmpeg has an AVI or WAV tag for), Matroska (rounds timestamps to
#: milliseconds, so last).
CHUNK_FORMATS = ("mp4", "mov", "nut", "matroska")


def chunk_format(stream: av.VideoStream) -> str | None:
    """The first of CHUNK_FORMATS that can stream-copy `stream` (a header is really written,
    so a muxer that lacks a tag for the codec is found out here), or None."""
    return next((fmt for fmt in CHUNK_FORMATS if can_hold(fmt, stream)), None)


def split_chunks(source: str | Path, chunks: list[ChunkSpec], out_dir: str | Path) -> list[Path]:
    """Write each chunk's video packets (stream copy) to `out_dir/chunk_NNNNN.mp4`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / c.name for c in chunks]
    with open_media(source) as container:
        stream = container.streams.video[0]
        fmt = chunk_format(stream)
        if fmt is None:
            raise InputError(
                f"{source}: no container can carry its {stream.codec_context.codec.long_name} "
                "video for processing"
            )
        options = {}
        if fmt in ("mp4", "mov"):  # custom tags (the window) need use_metadata_tags
            options = {**mp4_options(stream.time_base), "movflags": "use_metadata_tags"}
        fresh = enumerate(p for p in container.demux(stream) if p.size)
        carried: list[tuple[int, av.Packet]] = []  # read for one chunk, needed by the next
        following = [c.first_packet for c in chunks[1:]] + [1 << 62]
        for chunk, path, next_first in zip(chunks, paths, following, strict=True):
            try:
                with (
                    atomic_output(path) as tmp,
                    av.open(str(tmp), "w", fmt, options=options) as out,
                ):
                    out.metadata[WINDOW_TAG] = _window(chunk, stream.time_base)
                    out_stream = out.add_stream_from_template(stream, opaque=True)
                    out_stream.time_base = stream.time_base
                    wanted = range(chunk.first_packet, chunk.first_packet + chunk.packets)
                    pending, carried = carried, []
                    for number, packet in itertools.chain(pending, _until(fresh, wanted.stop)):
                        if number >= next_first:  # muxing consumes a packet: keep a copy
                            carried.append((number, _copy(packet)))
                        if number in wanted:
                            packet.stream = out_stream
                            out.mux(packet)
            except av.error.FFmpegError as exc:
                raise MediaError(
                    f"{source}: cannot cut chunk {chunk.index} ({short_reason(exc)})"
                ) from None
    return paths


def _until(numbered: Iterator[tuple[int, av.Packet]], stop: int) -> Iterator:
    """Take from `numbered` up to and including number `stop - 1` (and no further)."""
    for number, packet in numbered:
        yield number, packet
        if number >= stop - 1:
            return


def _window(chunk: ChunkSpec, time_base: Fraction) -> str:
    return f"{chunk.start_pts * time_base},{chunk.end_pts * time_base}"


def read_window(container: av.container.InputContainer) -> tuple[Fraction, Fraction] | None:
    """The (start, end) seconds a chunk file's frames must be shown in, if it is one."""
    tags = {k.lower(): v for k, v in container.metadata.items()}
    if WINDOW_TAG not in tags:
        return None
    try:
        start, end = (Fraction(v) for v in tags[WINDOW_TAG].split(","))
    except ValueError:
        raise InputError(f"bad {WINDOW_TAG} tag {tags[WINDOW_TAG]!r}") from None
    return start, end


def _copy(packet: av.Packet) -> av.Packet:
    twin = av.Packet(bytes(packet))
    twin.pts, twin.dts, twin.duration = packet.pts, packet.dts, packet.duration
    twin.time_base, twin.is_keyframe = packet.time_base, packet.is_keyframe
    return twin


def save_plan(chunks: list[ChunkSpec], time_base: Fraction, path: str | Path) -> None:
    """Write the chunk plan as JSON (used by the work dir and the cloud job record)."""
    data = {
        "time_base": f"{time_base.numerator}/{time_base.denominator}",
        "chunks": [asdict(c) for c in chunks],
    }
    Path(path).write_text(json.dumps(data, indent=1))


def load_plan(path: str | Path) -> list[ChunkSpec]:
    """Read a chunk plan written by `save_plan`."""
    data = json.loads(Path(path).read_text())
    return [ChunkSpec(**c) for c in data["chunks"]]
