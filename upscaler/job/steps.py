"""The steps around the model that every runner shares: prepare, verify a chunk, finish.

`upscaler upscale` (engine/video.py) runs them in one process; in the cloud split runs
`prepare`, collect `verify_chunk` and merge `finish`. Torch-free, AWS-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upscaler.errors import LimitExceededError, MediaError
from upscaler.media.chunks import ChunkSpec, plan_chunks, split_chunks
from upscaler.media.limits import Limits
from upscaler.media.merge import merge_chunks
from upscaler.media.probe import MediaInfo, PacketIndex, probe, probe_with_packets


@dataclass(frozen=True)
class Prepared:
    """A probed source cut into keyframe chunks (`paths[i]` holds `chunks[i]`)."""

    info: MediaInfo
    chunks: list[ChunkSpec]
    paths: list[Path]


def check_output_limits(info: MediaInfo, scale: int, limits: Limits) -> None:
    """Refuse before any work when the upscaled frame would be too large."""
    pixels = info.video.width * info.video.height * scale * scale
    if pixels > limits.max_output_pixels:
        raise LimitExceededError(
            f"output {info.video.width * scale}x{info.video.height * scale} is over the limit "
            f"of {limits.max_output_pixels} pixels; use a smaller --scale"
        )


def prepare(
    source: Path,
    scale: int,
    chunk_seconds: float,
    out_dir: Path,
    limits: Limits,
    probed: tuple[MediaInfo, PacketIndex] | None = None,
) -> Prepared:
    """Probe, check limits, plan keyframe chunks and stream-copy them into `out_dir`.

    `probed` is `probe_with_packets(source, limits)` when the caller already has it.
    """
    info, packets = probed or probe_with_packets(source, limits)
    check_output_limits(info, scale, limits)
    chunks = plan_chunks(info, packets, chunk_seconds, limits)
    paths = split_chunks(source, chunks, out_dir)
    return Prepared(info, chunks, paths)


def verify_chunk(index: int, frames: int, expected: int) -> None:
    """An upscaled chunk must hold exactly the frames of its source chunk."""
    if frames != expected:
        raise MediaError(f"chunk {index}: decoded {frames} frames, expected {expected}")


def finish(
    chunk_paths: list[Path],
    source: Path,
    output: Path,
    *,
    rotation: int,
    frame_count: int,
    limits: Limits,
) -> MediaInfo:
    """Merge the upscaled chunks with the source's other streams; check the result.

    Returns the output's probe. An output without the source's `frame_count` frames is
    removed and refused.
    """
    merge_chunks(chunk_paths, source, output, rotation=rotation)
    info = probe(output, Limits(max_input_pixels=limits.max_output_pixels))
    if info.video.frame_count != frame_count:
        output.unlink()  # a complete file, but not the video asked for: never leave it
        raise MediaError(
            f"merged video has {info.video.frame_count} frames, the source {frame_count}"
        )
    return info


def media_facts(info: MediaInfo) -> dict[str, Any]:
    """The source facts a job row keeps (merge and `upscaler status` read them)."""
    video = info.video
    return {
        "width": video.width,
        "height": video.height,
        "codec": video.codec,
        "frame_rate": f"{video.frame_rate.numerator}/{video.frame_rate.denominator}",
        "frame_count": video.frame_count,
        "duration_s": video.duration_s,
        "vfr": video.vfr,
        "rotation": video.rotation,
        "audio_streams": len(info.audio),
        "subtitle_streams": len(info.subtitles),
    }
