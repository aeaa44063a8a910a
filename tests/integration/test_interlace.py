"""Interlaced and anamorphic input: detection by the pictures (not the flags), bwdif before
the model, square pixels on request. The interlaced clips are woven from a progressive render
at twice the frame rate, so that render is the ground truth."""

from __future__ import annotations

import av
import numpy as np
import pytest

from tests.clips import frame_times_of
from tests.formats import FAMILIES, make_family_clip
from upscaler import cli
from upscaler.evaluate.metrics import psnr
from upscaler.media.limits import Limits
from upscaler.media.probe import probe
from upscaler.media.sample import render_frames

BIG = Limits(max_input_pixels=1 << 40)
WOVEN = "ts-h264-interlaced-ac3"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("interlace")
    names = (WOVEN, "ts-mpeg2-interlaced-ac3", "dv-avi-pcm", "dvd-mpeg2-ps-ac3", "xvid-avi-mp3")
    return {n: make_family_clip(root / f"{n}{FAMILIES[n].suffix}", FAMILIES[n]) for n in names}


def upscale(src, out, capsys, *extra: str) -> str:
    code = cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic", *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def frames_rgb(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_detection_trusts_pictures_not_flags(clips):
    for name in (WOVEN, "ts-mpeg2-interlaced-ac3"):
        video = probe(clips[name]).video
        assert video.interlaced and video.field_order == "tt" and video.combed == 1.0
    dv = probe(clips["dv-avi-pcm"]).video  # DV flags every frame interlaced; these are not
    assert dv.interlaced_flags == 1.0 and not dv.interlaced
    assert not probe(clips["xvid-avi-mp3"]).video.interlaced


def test_deinterlaced_x2_beats_woven_fields(clips, tmp_path, capsys):
    """Each output frame against the progressive render at the top field's time, rendered
    directly at the output size (the x2 ground truth)."""
    fam = FAMILIES[WOVEN]
    truth = render_frames(2 * fam.width, 2 * fam.height, 2 * fam.frames)[0::2]
    scores = {}
    for mode in ("frame", "off"):
        out = tmp_path / f"{mode}.mkv"
        upscale(clips[WOVEN], out, capsys, "--deinterlace", mode)
        frames = frames_rgb(out)
        assert len(frames) == fam.frames
        scores[mode] = float(np.mean([psnr(o, t) for o, t in zip(frames, truth, strict=True)]))
    print(f"PSNR-Y x2 vs progressive truth: bwdif {scores['frame']:.2f}, woven {scores['off']:.2f}")
    assert scores["frame"] > scores["off"] + 2
    assert frame_times_of(tmp_path / "frame.mkv") == pytest.approx(
        frame_times_of(clips[WOVEN]), abs=0.0006
    )
    assert probe(tmp_path / "frame.mkv", BIG).video.combed == 0


def test_auto_deinterlaces_with_a_notice(clips, tmp_path, capsys, caplog):
    upscale(clips[WOVEN], tmp_path / "auto.mkv", capsys)
    [notice] = [r.getMessage() for r in caplog.records]
    assert "deinterlacing with bwdif" in notice
    assert not probe(tmp_path / "auto.mkv", BIG).video.interlaced


def test_field_rate_doubles_frames_at_the_field_times(clips, tmp_path, capsys):
    """--deinterlace field: one frame per field, each at its field's time, each scored
    against the progressive render at that time."""
    fam, out = FAMILIES[WOVEN], tmp_path / "field.mkv"
    upscale(clips[WOVEN], out, capsys, "--deinterlace", "field")
    frames = frames_rgb(out)
    after = probe(out, BIG).video
    assert len(frames) == after.frame_count == 2 * fam.frames
    assert after.frame_rate == 2 * fam.rate
    step = float(1 / fam.rate) / 2
    expected = [t + half for t in frame_times_of(clips[WOVEN]) for half in (0, step)]
    assert frame_times_of(out) == pytest.approx(expected, abs=0.0006)
    truth = render_frames(2 * fam.width, 2 * fam.height, 2 * fam.frames)
    score = float(np.mean([psnr(o, t) for o, t in zip(frames, truth, strict=True)]))
    print(f"PSNR-Y x2 field rate vs progressive truth: bwdif send_field {score:.2f}")
    assert score > 30


@pytest.mark.parametrize(
    ("name", "size"), [("dvd-mpeg2-ps-ac3", (854, 480)), ("dv-avi-pcm", (1440, 1080))]
)
def test_square_pixels_keep_the_display_aspect(clips, name, size, tmp_path, capsys):
    """A wide pixel widens the picture, a tall one heightens it: nothing is shrunk."""
    before = probe(clips[name]).video
    out = tmp_path / "square.mkv"
    upscale(clips[name], out, capsys, "--square-pixels", "--deinterlace", "off")
    after = probe(out, BIG).video
    assert (after.width, after.height) == size
    assert after.sample_aspect_ratio == 1
    ratio = after.display_aspect_ratio / before.display_aspect_ratio
    assert float(ratio) == pytest.approx(1, rel=0.01)
    assert after.frame_count == before.frame_count
