"""Upscale a whole video: probe -> plan chunks -> split -> upscale each -> merge.

The same library functions run in the cloud (split/merge Lambdas, the endpoint); here they
run in one process. With a work dir, finished chunks survive a crash or Ctrl-C and a re-run
only does what is left, producing the identical file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from upscaler.engine.memory import release_free_memory
from upscaler.engine.pipeline import upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.errors import LimitExceededError, MediaError
from upscaler.media.chunks import ChunkSpec, plan_chunks, split_chunks
from upscaler.media.filters import Picture
from upscaler.media.limits import Limits
from upscaler.media.merge import merge_chunks, output_format
from upscaler.media.probe import MediaInfo, PacketIndex, probe, probe_with_packets
from upscaler.media.writer import EncodeSettings

Progress = Callable[[int], None]


@dataclass(frozen=True)
class VideoResult:
    """Summary of one `upscale_video` run."""

    frames: int
    seconds: float
    chunks: int
    chunks_reused: int
    width: int
    height: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _fingerprint(source: Path, upscaler: Upscaler, settings: EncodeSettings, seconds: float) -> str:
    st = source.stat()
    facts = {
        "source": str(source.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "model": upscaler.name,
        "scale": upscaler.scale,
        "settings": asdict(settings),
        "chunk_seconds": seconds,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_work_dir(
    work: Path, source: Path, info_packets, fingerprint: str, seconds: float, limits: Limits
) -> list[ChunkSpec]:
    """Plan and split into `work`, or reuse what a previous identical run left there."""
    state = work / "state.json"
    if state.is_file():
        saved = json.loads(state.read_text())
        if saved.get("fingerprint") == fingerprint:
            return [ChunkSpec(**c) for c in saved["chunks"]]
        shutil.rmtree(work / "src", ignore_errors=True)
        shutil.rmtree(work / "up", ignore_errors=True)
    info, packets = info_packets
    chunks = plan_chunks(info, packets, seconds, limits)
    split_chunks(source, chunks, work / "src")
    (work / "up").mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "chunks": [asdict(c) for c in chunks]}))
    tmp.replace(state)
    return chunks


def check_output_limits(info: MediaInfo, scale: int, limits: Limits) -> None:
    """Refuse before any work when the upscaled frame would be too large."""
    pixels = info.video.width * info.video.height * scale * scale
    if pixels > limits.max_output_pixels:
        raise LimitExceededError(
            f"output {info.video.width * scale}x{info.video.height * scale} is over the limit "
            f"of {limits.max_output_pixels} pixels; use a smaller --scale"
        )


def upscale_video(
    source: str | Path,
    output: str | Path,
    upscaler: Upscaler,
    settings: EncodeSettings | None = None,
    work_dir: str | Path | None = None,
    chunk_seconds: float = 10.0,
    batch: int = 4,
    progress: Progress | None = None,
    limits: Limits | None = None,
    probed: tuple[MediaInfo, PacketIndex] | None = None,
    picture: Picture | None = None,
) -> VideoResult:
    """Upscale `source` into `output` (written atomically). See the module docstring.

    `probed` is `probe_with_packets(source)` when the caller already has it; `picture` is
    the decode-side treatment (deinterlace, square pixels), part of the resume fingerprint.
    """
    source, output = Path(source), Path(output)
    settings = settings or EncodeSettings()
    limits = limits or Limits.from_env()
    output_format(output)  # fail early on an unsupported suffix
    started = time.perf_counter()
    info, packets = probed or probe_with_packets(source, limits)
    check_output_limits(info, upscaler.scale, limits)
    fingerprint = _fingerprint(source, upscaler, settings, chunk_seconds)
    if picture is not None and picture.active:
        fingerprint += f"-{picture}"
    temp = None if work_dir else tempfile.TemporaryDirectory(prefix="upscaler-")
    work = Path(work_dir or temp.name)  # type: ignore[union-attr]
    try:
        work.mkdir(parents=True, exist_ok=True)
        chunks = _prepare_work_dir(
            work, source, (info, packets), fingerprint, chunk_seconds, limits
        )
        done_paths, reused, frames = [], 0, 0
        for chunk in chunks:
            src, dst = work / "src" / chunk.name, work / "up" / chunk.name
            if dst.is_file():
                reused += 1
                if progress:
                    progress(chunk.frame_count)
            else:
                result = upscale_chunk(
                    src, dst, upscaler, settings, batch, progress, limits, picture
                )
                expected = chunk.frame_count * (picture.frames_per_frame if picture else 1)
                if result.frames != expected:
                    dst.unlink()
                    raise MediaError(
                        f"chunk {chunk.index}: decoded {result.frames} frames, expected {expected}"
                    )
                frames += result.frames
                release_free_memory()
            done_paths.append(dst)
        merge_chunks(done_paths, source, output, rotation=info.video.rotation)
    finally:
        if temp is not None:
            temp.cleanup()
    out_info = probe(output, Limits(max_input_pixels=limits.max_output_pixels))
    return VideoResult(
        frames=info.video.frame_count,
        seconds=time.perf_counter() - started,
        chunks=len(chunks),
        chunks_reused=reused,
        width=out_info.video.width,
        height=out_info.video.height,
    )
