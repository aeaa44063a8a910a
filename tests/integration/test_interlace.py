"""Interlaced, telecined and anamorphic input: detection by the pictures (not the flags),
bwdif or inverse telecine before the model, square pixels on request. The interlaced clips
are woven from a progressive render at twice the frame rate, the telecined one from a render
at 24000/1001 by 3:2 pulldown, so those renders are the ground truth."""

from __future__ import annotations

import json
from dataclasses import replace

import av
import numpy as np
import pytest

from tests.clips import frame_times_of
from tests.formats import FAMILIES, TELECINED, make_family_clip, pulldown_fields
from upscaler import cli
from upscaler.errors import InputError
from upscaler.evaluate.metrics import psnr
from upscaler.media.chunks import plan_chunks
from upscaler.media.filters import Picture
from upscaler.media.limits import Limits
from upscaler.media.probe import probe, probe_with_packets
from upscaler.media.sample import render_frames

BIG = Limits(max_input_pixels=1 << 40)
WOVEN = "ts-h264-interlaced-ac3"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("interlace")
    names = (WOVEN, "ts-mpeg2-interlaced-ac3", "dv-avi-pcm", "dvd-mpeg2-ps-ac3", "xvid-avi-mp3")
    made = {n: make_family_clip(root / f"{n}{FAMILIES[n].suffix}", FAMILIES[n]) for n in names}
    return made | {"telecined": make_family_clip(root / "telecined.vob", TELECINED)}


def upscale(src, out, capsys, *extra: str) -> str:
    code = cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic", *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def frames_rgb(path, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Every frame as RGB, resized to `size` (width, height) if given."""
    width, height = size or (None, None)
    with av.open(str(path)) as container:
        return [
            f.to_ndarray(format="rgb24", width=width, height=height)
            for f in container.decode(video=0)
        ]


def test_detection_trusts_pictures_not_flags(clips):
    for name in (WOVEN, "ts-mpeg2-interlaced-ac3"):
        video = probe(clips[name]).video
        assert video.interlaced and video.field_order == "tt" and video.combed == 1.0
        assert not video.telecined  # re-pairing fields of different moments combs too
    dv = probe(clips["dv-avi-pcm"]).video  # DV flags every frame interlaced; these are not
    assert dv.interlaced_flags == 1.0 and not dv.interlaced and not dv.telecined
    assert not probe(clips["xvid-avi-mp3"]).video.interlaced
    film = probe(clips["telecined"]).video  # 2 of each 5 frames combed
    assert film.telecined and film.interlaced and film.combed == pytest.approx(0.4)


def test_telecine_is_stated_and_needs_a_constant_rate(clips, capsys):
    src = clips["telecined"]
    assert cli.main(["probe", str(src)]) == 0
    assert "scan: telecined (field order tt" in capsys.readouterr().out
    assert cli.main(["probe", str(src), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["video"]["telecined"] is True
    film = probe(src).video
    assert Picture.choose("auto", False, film).deinterlace == "ivtc"
    vfr = replace(film, vfr=True)  # decimate counts frames: bwdif instead
    assert Picture.choose("auto", False, vfr).deinterlace == "frame"
    with pytest.raises(InputError, match="ivtc needs a constant frame rate"):
        Picture.choose("ivtc", False, vfr)


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


def test_telecined_film_comes_back_frame_for_frame(clips, tmp_path, capsys, caplog):
    """auto chooses ivtc (fieldmatch + decimate): the 16 film frames at 24000/1001, each
    scored against the film frame rendered at the output size; bwdif (frame) keeps 20 frames,
    each scored against the film frame of its top field (the one bwdif keeps)."""
    fam, src = TELECINED, clips["telecined"]
    film = render_frames(2 * fam.width, 2 * fam.height, fam.frames * 4 // 5)
    tops = pulldown_fields(fam.frames)[0::2]
    args = ["upscale", str(src), "-o", str(tmp_path / "ivtc.mkv"), "--model", "bicubic"]
    assert cli.main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == len(film)
    assert "telecined film (3:2 pulldown, 40% of sample frames combed)" in caplog.text
    upscale(src, tmp_path / "frame.mkv", capsys, "--deinterlace", "frame")
    ivtc, frame = frames_rgb(tmp_path / "ivtc.mkv"), frames_rgb(tmp_path / "frame.mkv")
    assert (len(ivtc), len(frame)) == (len(film), fam.frames)
    scores = {
        "ivtc": float(np.mean([psnr(o, t) for o, t in zip(ivtc, film, strict=True)])),
        "frame": float(np.mean([psnr(o, film[k]) for o, k in zip(frame, tops, strict=True)])),
    }
    print(f"PSNR-Y x2 vs film truth: ivtc {scores['ivtc']:.2f}, bwdif {scores['frame']:.2f}")
    assert scores["ivtc"] > scores["frame"] + 1
    after = probe(tmp_path / "ivtc.mkv", BIG).video
    assert after.frame_rate == fam.rate * 4 / 5 and not after.interlaced
    start, step = frame_times_of(src)[0], float(1 / after.frame_rate)
    expected = [start + k * step for k in range(len(film))]
    assert frame_times_of(tmp_path / "ivtc.mkv") == pytest.approx(expected, abs=0.0006)


@pytest.mark.parametrize("phase", [0, 2])
def test_ivtc_chunks_count_exactly_and_keep_every_film_frame(phase, tmp_path, capsys):
    """Chunks are decimated on their own: a chunk of n frames gives n - n // 5 (a last
    part-cycle is kept whole, its repeat too), which the engine checks chunk by chunk. Every
    film frame the clip holds both fields of comes out: also one whose fields a seam splits
    (phase 2, chunk 3), and where the cadence repeats a chunk's first frame (phase 0, chunk
    1): each chunk gets the previous chunk's last frame to pair fields with and to compare."""
    fam = replace(TELECINED, frames=60, phase=phase, options={**TELECINED.options, "g": "12"})
    src = make_family_clip(tmp_path / "long.vob", fam)
    info, packets = probe_with_packets(src)
    sizes = [c.frame_count for c in plan_chunks(info, packets, seconds=0.3)]
    assert len(sizes) > 1 and any(n % 5 for n in sizes)
    out = tmp_path / "out.mkv"
    upscale(src, out, capsys, "--deinterlace", "ivtc", "--chunk-seconds", "0.3")
    assert probe(out, BIG).video.frame_count == sum(n - n // 5 for n in sizes)
    times = frame_times_of(out)
    assert len(set(times)) == len(times)  # film times from each chunk's start never collide
    fields = pulldown_fields(fam.frames, phase)
    size = (fam.width // 2, fam.height // 2)  # the film frame each output frame is nearest
    film = render_frames(*size, fields[-1] + 1)
    shown = {int(np.argmax([psnr(o, t) for t in film])) for o in frames_rgb(out, size)}
    assert {k for k in fields if fields.count(k) > 1} <= shown  # (one field: a clip's ends)
