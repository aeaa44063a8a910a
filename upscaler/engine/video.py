"""Upscale a whole video: prepare (probe, limits, plan, split) -> upscale chunks -> finish.

The job layer's steps (`upscaler.job`) run in the cloud too (split, collect and merge Lambdas);
here they run in one process. With a work dir, finished chunks survive a crash or Ctrl-C and a
re-run only does what is left, producing the identical file.
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
from upscaler.engine.pipeline import Neighbours, upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.errors import MediaError
from upscaler.job import check_output_limits, finish, prepare, verify_chunk
from upscaler.media.chunks import ChunkSpec
from upscaler.media.filters import Picture
from upscaler.media.limits import Limits
from upscaler.media.merge import output_format
from upscaler.media.probe import MediaInfo, PacketIndex, probe_with_packets
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
    work: Path,
    source: Path,
    probed: tuple[MediaInfo, PacketIndex],
    scale: int,
    fingerprint: str,
    seconds: float,
    limits: Limits,
) -> list[ChunkSpec]:
    """Plan and split into `work`, or reuse what a previous identical run left there."""
    state = work / "state.json"
    if state.is_file():
        saved = json.loads(state.read_text())
        if saved.get("fingerprint") == fingerprint:
            return [ChunkSpec(**c) for c in saved["chunks"]]
        shutil.rmtree(work / "src", ignore_errors=True)
        shutil.rmtree(work / "up", ignore_errors=True)
    chunks = prepare(source, scale, seconds, work / "src", limits, probed).chunks
    (work / "up").mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "chunks": [asdict(c) for c in chunks]}))
    tmp.replace(state)
    return chunks


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
    picture = picture or Picture()
    if picture.active:
        fingerprint += f"-{picture}"
    temp = None if work_dir else tempfile.TemporaryDirectory(prefix="upscaler-")
    work = Path(work_dir or temp.name)  # type: ignore[union-attr]
    try:
        work.mkdir(parents=True, exist_ok=True)
        chunks = _prepare_work_dir(
            work, source, (info, packets), upscaler.scale, fingerprint, chunk_seconds, limits
        )
        total = sum(picture.frames_out(chunk.frame_count) for chunk in chunks)
        done_paths, reused, frames = [], 0, 0
        sources = [work / "src" / chunk.name for chunk in chunks]
        for i, chunk in enumerate(chunks):
            src, dst = sources[i], work / "up" / chunk.name
            if dst.is_file():
                reused += 1
                if progress:
                    progress(picture.frames_out(chunk.frame_count))
            else:
                around = Neighbours(sources[:i], sources[i + 1 :])  # read by window models
                result = upscale_chunk(
                    src, dst, upscaler, settings, batch, progress, limits, picture, around
                )
                try:
                    verify_chunk(chunk.index, result.frames, picture.frames_out(chunk.frame_count))
                except MediaError:
                    dst.unlink()
                    raise
                frames += result.frames
                release_free_memory()
            done_paths.append(dst)
        out_info = finish(
            done_paths,
            source,
            output,
            rotation=info.video.rotation,
            frame_count=total,
            limits=limits,
        )
    finally:
        if temp is not None:
            temp.cleanup()
    return VideoResult(
        frames=total,
        seconds=time.perf_counter() - started,
        chunks=len(chunks),
        chunks_reused=reused,
        width=out_info.video.width,
        height=out_info.video.height,
    )
