"""`upscaler dataset build`: scenes, sharpness, duplicates, patches, the shard format."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.clips import ClipSpec, make_clip
from upscaler.dataset.build import BuildSettings, build_dataset, sharpness
from upscaler.dataset.shards import MANIFEST, ShardedPatches, ShardFormatError
from upscaler.errors import InputError
from upscaler.media.sample import render_frames
from upscaler.train.data import PatchSampler

SETTINGS = BuildSettings(patch=32, per_scene=2, patches_per_frame=6, shard_size=16, seed=7)


def make_cut_clip(path: Path, width: int = 192, height: int = 128, frames: int = 24) -> Path:
    """A clip with a hard scene cut halfway: the sample pan, then the same pan mirrored and
    colour-inverted (different content, same texture statistics)."""
    pan = render_frames(width, height, frames)
    shots = pan[: frames // 2] + [255 - f[:, ::-1] for f in pan[frames // 2 :]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for rgb in shots:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("dataset-clips")
    pan = make_clip(root / "pan.mp4", ClipSpec(width=160, height=96, frames=20))
    return [pan, make_cut_clip(root / "cut.mp4")]


@pytest.fixture(scope="module")
def built(clips, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("built") / "ds"
    return build_dataset([str(c) for c in clips], out, SETTINGS)


def all_patches(directory: str | Path) -> np.ndarray:
    return np.asarray(ShardedPatches(directory))


def test_build_counts_scenes_and_manifest(built):
    pan, cut = built["sources"]
    assert pan["scenes"] == 1 and cut["scenes"] == 2  # the hard cut is found, the pan is one
    assert pan["frames_used"] <= SETTINGS.per_scene
    assert cut["frames_used"] <= 2 * SETTINGS.per_scene and cut["frames_used"] >= 2
    assert built["count"] == pan["patches"] + cut["patches"] > 0
    assert built["count"] == sum(f["count"] for f in built["frames"])
    assert max(f["count"] for f in built["frames"]) <= SETTINGS.patches_per_frame

    manifest = json.loads((Path(built["output"]) / MANIFEST).read_text())
    assert manifest["format"] == "upscaler-patches" and manifest["version"] == 1
    assert manifest["patch"] == 32 and manifest["seed"] == 7
    assert [s["count"] for s in manifest["shards"]][:-1] == [16] * (len(manifest["shards"]) - 1)
    assert sum(s["count"] for s in manifest["shards"]) == manifest["count"]
    # provenance: every patch range maps to a source and a frame pts, in order, no gaps
    first = 0
    for frame in manifest["frames"]:
        assert frame["first"] == first and frame["source"] in (0, 1)
        assert isinstance(frame["pts"], int) and frame["sharpness"] >= SETTINGS.min_sharpness
        first += frame["count"]
    assert first == manifest["count"]
    assert not list(Path(built["output"]).parent.glob(".ds.building-*"))  # temp dir is gone


def test_no_duplicate_patches_even_from_the_same_clip_twice(clips, built, tmp_path):
    patches = all_patches(built["output"])
    assert len({p.tobytes() for p in patches}) == len(patches)
    again = build_dataset([str(clips[1]), str(clips[1])], tmp_path / "twice", SETTINGS)
    first, second = again["sources"]
    assert second["patches"] == 0 and second["duplicates"] == first["frames_used"]


def test_deterministic_with_a_seed(clips, built, tmp_path):
    same = build_dataset([str(c) for c in clips], tmp_path / "same", SETTINGS)
    assert np.array_equal(all_patches(same["output"]), all_patches(built["output"]))
    assert [s["sha256"] for s in same["shards"]] == [s["sha256"] for s in built["shards"]]
    other = build_dataset(
        [str(c) for c in clips], tmp_path / "other", BuildSettings(**{**vars(SETTINGS), "seed": 8})
    )
    assert not np.array_equal(all_patches(other["output"]), all_patches(built["output"]))


def test_max_patches_and_image_folder(clips, tmp_path):
    capped = build_dataset(
        [str(c) for c in clips],
        tmp_path / "capped",
        SETTINGS.__class__(patch=32, patches_per_frame=6, max_patches=5),
    )
    assert capped["count"] == 5
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    for i, rgb in enumerate(render_frames(128, 96, 3)[::2]):
        Image.fromarray(rgb).save(folder / f"img{i}.png")
    result = build_dataset([str(folder)], tmp_path / "imgs", BuildSettings(patch=32))
    assert result["sources"][0]["kind"] == "images" and result["count"] > 0
    assert {f["file"] for f in result["frames"]} <= {"img0.png", "img1.png"}


def test_sharded_patches_is_an_array_for_the_sampler(built):
    patches = ShardedPatches(built["output"])
    dense = np.asarray(patches)
    n = len(patches)
    assert patches.shape == (n, 32, 32, 3) == dense.shape
    assert patches.dtype == np.uint8 and patches.ndim == 4
    assert np.array_equal(patches[n - 1], dense[-1]) and np.array_equal(patches[-1], dense[-1])
    assert np.array_equal(patches[np.int64(17), 4:20, 8:24], dense[17, 4:20, 8:24])  # shard 2
    assert np.array_equal(patches[[0, 16, n - 1]], dense[[0, 16, n - 1]])
    assert isinstance(patches._shard(0), np.memmap)  # mapped, not loaded
    with pytest.raises(IndexError):
        patches[n]
    sampler = PatchSampler(patches, scale=2, crop=32, channels="y", seed=0)
    lr, hr = sampler.sample(4)
    assert lr.shape == (4, 1, 16, 16) and hr.shape == (4, 1, 32, 32)


def test_a_directory_of_datasets_reads_as_one(built, tmp_path):
    import shutil

    root = tmp_path / "shards"
    for name in ("a", "b"):
        shutil.copytree(built["output"], root / name)
    both = ShardedPatches(root)
    assert len(both) == 2 * built["count"]
    assert both.frames[-1]["first"] + both.frames[-1]["count"] == len(both)
    (root / "c").mkdir()
    (root / "c" / MANIFEST).write_text('{"format": "upscaler-patches", "version": 99}')
    with pytest.raises(ShardFormatError, match="version 99"):
        ShardedPatches(root)


def test_bad_sources_leave_the_existing_dataset_alone(clips, built, tmp_path):
    import shutil

    out = tmp_path / "kept"
    shutil.copytree(built["output"], out)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate = 48000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    for bad, reason in ((junk, "not a supported video"), (audio, "no video stream")):
        with pytest.raises(InputError, match=reason):
            build_dataset([str(clips[0]), str(bad)], out, SETTINGS)
    with pytest.raises(InputError, match=r"private|loopback"):
        build_dataset(["http://127.0.0.1:9/clip.mp4"], out, SETTINGS)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    assert not list(tmp_path.glob(".kept.building-*"))
    skipped = build_dataset([str(clips[0]), str(junk)], tmp_path / "skip", SETTINGS, skip_bad=True)
    assert skipped["count"] > 0 and skipped["skipped"][0]["source"] == str(junk)


def test_sharpness_prefers_detail():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64), 128, np.uint8)
    noisy = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    assert sharpness(flat) == 0.0 < sharpness(noisy)
