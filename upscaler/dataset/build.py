"""Build a training dataset of HR patches from videos, image folders or URLs.

For each video, frames are decoded one at a time by the core media layer (never the whole
video in memory):

1. **scenes**: a cut is where the mean absolute difference of consecutive 32x18 luma
   thumbnails exceeds `scene_threshold` (0..255 scale); a take longer than `max_scene_s`
   counts as several scenes, so a long static shot still contributes frames.
2. **sharpness**: the variance of the Laplacian of the luma plane; frames under
   `min_sharpness` (black frames, fades, motion blur) are never picked. In each scene the
   `per_scene` sharpest frames at least `min_gap_s` apart are kept (a few frames' planes are
   all that is held).
3. **near-duplicates**: a kept frame whose 16x16 luma thumbnail is within `dup_mse` (mean
   squared difference) of an earlier kept frame, from any source, is dropped: the same shot
   twice, a static slide, a loop.
4. **patches**: up to `patches_per_frame` PxP RGB patches on a grid with a random offset,
   flat ones (luma std < `min_patch_std`) skipped; exact duplicates are dropped by hash.

Everything random comes from `seed`, so the same sources and settings give the same bytes.
The output is the shard format of `upscaler.dataset.shards`, built in a temporary sibling
directory and moved into place only when complete: a bad source never leaves a half-written
or mixed dataset behind, and an existing dataset at `out_dir` survives a failed rebuild.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import av
import numpy as np
from PIL import Image

from upscaler.dataset.shards import DEFAULT_SHARD_SIZE, ShardWriter
from upscaler.errors import InputError, LimitExceededError
from upscaler.media.frames import engine_pix_fmt, planes_to_frame
from upscaler.media.limits import Limits
from upscaler.media.probe import probe
from upscaler.media.safe_open import open_media, short_reason

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
URL_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class BuildSettings:
    """How frames and patches are picked (defaults suit 480p-1080p footage)."""

    patch: int = 96
    per_scene: int = 2
    patches_per_frame: int = 16
    max_patches: int | None = None
    seed: int = 0
    scene_threshold: float = 30.0
    max_scene_s: float = 10.0
    min_gap_s: float = 0.5
    min_sharpness: float = 20.0
    dup_mse: float = 12.0
    min_patch_std: float = 6.0
    shard_size: int = DEFAULT_SHARD_SIZE
    licence: str = ""

    def __post_init__(self) -> None:
        if self.patch < 16 or self.patch % 4:
            raise InputError(f"patch size must be a multiple of 4 and >= 16, not {self.patch}")
        if self.per_scene < 1 or self.patches_per_frame < 1:
            raise InputError("per-scene and patches-per-frame must be >= 1")
        if self.max_patches is not None and self.max_patches < 1:
            raise InputError("max-patches must be >= 1")


@dataclass(eq=False)
class Candidate:
    """A frame kept for its scene so far: its planes (compact) and scores."""

    planes: list[np.ndarray]
    pts: int | None
    time_s: float
    index: int
    sharpness: float
    thumb: np.ndarray


@dataclass
class SourceStats:
    name: str
    kind: str
    width: int = 0
    height: int = 0
    frames_decoded: int = 0
    scenes: int = 0
    frames_used: int = 0
    duplicates: int = 0
    blurry: int = 0
    patches: int = 0


# --- scores --------------------------------------------------------------------------------
def luma8(y: np.ndarray) -> np.ndarray:
    """A luma plane as uint8 (10-bit planes shifted down)."""
    return (y >> 2).astype(np.uint8) if y.dtype != np.uint8 else y


def sharpness(y: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a luma plane (8-bit scale)."""
    f = luma8(y).astype(np.float32)
    if f.shape[0] < 3 or f.shape[1] < 3:
        return 0.0
    lap = 4 * f[1:-1, 1:-1] - f[:-2, 1:-1] - f[2:, 1:-1] - f[1:-1, :-2] - f[1:-1, 2:]
    return float(lap.var())


def thumbnail(y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged float32 luma thumbnail (w, h)."""
    return np.asarray(Image.fromarray(luma8(y)).resize(size, Image.BOX), dtype=np.float32)


def rgb_luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)


class Dedup:
    """Near-duplicate frames (thumbnail MSE) and exact duplicate patches (hash), global."""

    def __init__(self, dup_mse: float) -> None:
        self.dup_mse = dup_mse
        self.thumbs = np.empty((0, 16 * 16), np.float32)
        self.hashes: set[bytes] = set()

    def frame_is_new(self, thumb: np.ndarray) -> bool:
        flat = thumb.reshape(1, -1)
        if len(self.thumbs):
            mse = ((self.thumbs - flat) ** 2).mean(axis=1)
            if float(mse.min()) < self.dup_mse:
                return False
        self.thumbs = np.concatenate([self.thumbs, flat])
        return True

    def patch_is_new(self, patch: np.ndarray) -> bool:
        digest = hashlib.blake2b(patch.tobytes(), digest_size=12).digest()
        if digest in self.hashes:
            return False
        self.hashes.add(digest)
        return True


# --- patch cutting -------------------------------------------------------------------------
def cut_patches(
    rgb: np.ndarray, settings: BuildSettings, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Top-left corners of the patches to cut from one frame (grid, random offset, textured)."""
    p = settings.patch
    h, w = rgb.shape[:2]
    if h < p or w < p:
        return []
    oy, ox = int(rng.integers(0, h % p + 1)), int(rng.integers(0, w % p + 1))
    luma = rgb_luma(rgb)
    corners = [
        (y, x)
        for y in range(oy, h - p + 1, p)
        for x in range(ox, w - p + 1, p)
        if float(luma[y : y + p, x : x + p].std()) >= settings.min_patch_std
    ]
    order = rng.permutation(len(corners))[: settings.patches_per_frame]
    return [corners[i] for i in sorted(order)]


# --- sources -------------------------------------------------------------------------------
def is_url(source: str) -> bool:
    return source.lower().startswith(URL_SCHEMES)


def download(url: str, dest_dir: Path, guard: Any = None, max_bytes: int | None = None) -> Path:
    """Download a direct media URL through the SSRF guard (the fetch Lambda's), size-limited."""
    from upscaler.net.download import save_limited
    from upscaler.net.ssrf import UrlGuard, open_url

    guard = guard or UrlGuard()
    limit = max_bytes or Limits.from_env().max_input_bytes
    response, final = open_url(url, guard)
    name = PurePosixPath(unquote(urlsplit(final).path)).name or "download"
    path = dest_dir / f"url-{hashlib.sha256(url.encode()).hexdigest()[:10]}-{name}"
    save_limited(response, url, path, limit)
    return path


def _to_rgb(planes: list[np.ndarray], pix_fmt: str, matrix: int, full_range: bool) -> np.ndarray:
    height = planes[0].shape[0]
    # Unspecified matrix: the usual guess (HD is BT.709, SD BT.601).
    colorspace = matrix if matrix in (1, 5, 6, 7, 9) else (1 if height >= 720 else 5)
    frame = planes_to_frame(planes, pix_fmt)
    return frame.reformat(
        format="rgb24", src_colorspace=colorspace, src_color_range=2 if full_range else 1
    ).to_ndarray()


class Builder:
    """Streams sources into a ShardWriter; see the module docstring for the steps."""

    def __init__(self, writer: ShardWriter, settings: BuildSettings, limits: Limits) -> None:
        self.writer, self.settings, self.limits = writer, settings, limits
        self.dedup = Dedup(settings.dup_mse)
        self.frames: list[dict[str, Any]] = []
        self.sources: list[SourceStats] = []

    @property
    def full(self) -> bool:
        cap = self.settings.max_patches
        return cap is not None and self.writer.count >= cap

    def _emit(self, rgb: np.ndarray, stats: SourceStats, record: dict[str, Any]) -> None:
        """Cut one kept frame into patches and record where they came from."""
        s = self.settings
        rng = np.random.default_rng([s.seed, len(self.sources) - 1, record["index"]])
        first = self.writer.count
        for y, x in cut_patches(rgb, s, rng):
            if self.full:
                break
            patch = np.ascontiguousarray(rgb[y : y + s.patch, x : x + s.patch])
            if self.dedup.patch_is_new(patch):
                self.writer.add(patch)
        count = self.writer.count - first
        if count:
            stats.frames_used += 1
            stats.patches += count
            self.frames.append({**record, "first": first, "count": count})

    # --- videos ---------------------------------------------------------------------------
    def add_video(self, path: Path, name: str) -> SourceStats:
        s = self.settings
        info = probe(path, self.limits)  # InputError: unreadable, audio-only, over a limit
        video = info.video
        stats = SourceStats(name, "video", video.width, video.height)
        self.sources.append(stats)
        pix_fmt = engine_pix_fmt(video.pix_fmt)
        full_range = video.colour.range == 2 or pix_fmt.startswith("yuvj")
        tb = float(video.time_base)
        fps = float(video.frame_rate) or 25.0
        gap = max(1, round(s.min_gap_s * fps))
        scene: list[Candidate] = []
        scene_start, prev_thumb = None, None

        def flush() -> None:
            for cand in sorted(scene, key=lambda c: c.index):
                if self.full:
                    return
                if not self.dedup.frame_is_new(cand.thumb):
                    stats.duplicates += 1
                    continue
                rgb = _to_rgb(cand.planes, pix_fmt, video.colour.matrix, full_range)
                record = {
                    "source": len(self.sources) - 1,
                    "pts": cand.pts,
                    "time_s": round(cand.time_s, 4),
                    "index": cand.index,
                    "scene": stats.scenes - 1,
                    "sharpness": round(cand.sharpness, 1),
                }
                self._emit(rgb, stats, record)
            scene.clear()

        with open_media(path, self.limits) as container, _decode_errors(path):
            for index, (planes, pts) in enumerate(_decode(container, pix_fmt)):
                stats.frames_decoded += 1
                t = (pts - video.start_pts) * tb
                y = planes[0]
                small = thumbnail(y, (32, 18))
                cut = prev_thumb is None or float(np.abs(small - prev_thumb).mean()) > (
                    s.scene_threshold
                )
                if cut or t - scene_start >= s.max_scene_s:
                    flush()
                    if self.full:
                        break
                    stats.scenes += 1
                    scene_start = t
                prev_thumb = small
                score = sharpness(y)
                if score < s.min_sharpness:
                    stats.blurry += 1
                    continue
                cand = Candidate(planes, pts, t, index, score, thumbnail(y, (16, 16)))
                _consider(scene, cand, s.per_scene, gap)
            flush()
        return stats

    # --- images ---------------------------------------------------------------------------
    def add_images(self, folder: Path) -> SourceStats:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        stats = SourceStats(str(folder), "images")
        self.sources.append(stats)
        for index, file in enumerate(files):
            if self.full:
                break
            try:
                with Image.open(file) as img:
                    if img.width * img.height > self.limits.max_input_pixels:
                        raise LimitExceededError(f"{file}: {img.width}x{img.height} is too large")
                    rgb = np.asarray(img.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{file}: not a readable image ({exc})") from None
            stats.frames_decoded += 1
            stats.scenes += 1
            stats.width = max(stats.width, rgb.shape[1])
            stats.height = max(stats.height, rgb.shape[0])
            y = rgb_luma(rgb)
            score = sharpness(y)
            if score < self.settings.min_sharpness:
                stats.blurry += 1
                continue
            if not self.dedup.frame_is_new(thumbnail(y, (16, 16))):
                stats.duplicates += 1
                continue
            record = {
                "source": len(self.sources) - 1,
                "file": file.name,
                "pts": None,
                "index": index,
                "scene": stats.scenes - 1,
                "sharpness": round(score, 1),
            }
            self._emit(rgb, stats, record)
        return stats


@contextmanager
def _decode_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: corrupt video data ({short_reason(exc)})") from None


def _decode(container: Any, pix_fmt: str) -> Iterator[tuple[list[np.ndarray], int]]:
    from upscaler.media.frames import decode_frames

    for frame in decode_frames(container, pix_fmt):
        yield frame.planes, frame.pts


def _consider(scene: list[Candidate], cand: Candidate, keep: int, gap: int) -> None:
    """Keep the `keep` sharpest frames of a scene that are at least `gap` frames apart."""
    near = [c for c in scene if abs(c.index - cand.index) < gap]
    if near:
        if all(cand.sharpness > c.sharpness for c in near):
            for c in near:
                scene.remove(c)
            scene.append(cand)
        return
    if len(scene) < keep:
        scene.append(cand)
        return
    weakest = min(scene, key=lambda c: c.sharpness)
    if cand.sharpness > weakest.sharpness:
        scene.remove(weakest)
        scene.append(cand)


# --- the entry point -----------------------------------------------------------------------
def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the finished dataset `tmp` to `out_dir`, replacing an older one only now."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_dataset(
    sources: list[str],
    out_dir: str | Path,
    settings: BuildSettings | None = None,
    *,
    limits: Limits | None = None,
    guard: Any = None,
    shard_prefix: str = "",
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Build the dataset of `sources` (videos, image folders, http(s) URLs) into `out_dir`.

    Returns the manifest plus `output` and `seconds`. Raises InputError for a bad source
    (unless `skip_bad`: then it is listed under `skipped`) with nothing written to `out_dir`.
    """
    settings = settings or BuildSettings()
    limits = limits or Limits.from_env()
    if not sources:
        raise InputError("no sources given")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the dataset is an ordinary directory
    skipped: list[dict[str, str]] = []
    try:
        writer = ShardWriter(tmp, settings.patch, settings.shard_size, prefix=shard_prefix)
        builder = Builder(writer, settings, limits)
        with tempfile.TemporaryDirectory(prefix="dataset-dl-") as downloads:
            for source in sources:
                if builder.full:
                    break
                try:
                    _add_source(builder, source, Path(downloads), guard, limits)
                except InputError as exc:
                    if not skip_bad:
                        raise
                    log.warning("skipping %s: %s", source, exc)
                    skipped.append({"source": source, "reason": str(exc)})
        if writer.count == 0:
            raise InputError(
                "no patches: every frame was too small for the patch size, blurry or a duplicate"
            )
        manifest = writer.close(
            sources=[asdict(s) for s in builder.sources],
            frames=builder.frames,
            skipped=skipped,
            licence=settings.licence,
            seed=settings.seed,
            settings=asdict(settings),
        )
        _commit(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**manifest, "output": str(out_dir), "seconds": round(time.perf_counter() - started, 2)}


def _add_source(
    builder: Builder, source: str, downloads: Path, guard: Any, limits: Limits
) -> SourceStats:
    if is_url(source):
        path = download(source, downloads, guard, limits.max_input_bytes)
        try:
            return builder.add_video(path, source)
        finally:
            path.unlink(missing_ok=True)
    path = Path(source)
    if path.is_dir():
        return builder.add_images(path)
    if "://" in source:
        raise InputError(f"{source}: only http(s) URLs, local videos and image folders")
    return builder.add_video(path, path.name)
