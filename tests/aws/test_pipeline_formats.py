"""Old footage through the pipeline built from the synthesized stack (split -> endpoint ->
merge), held to what `upscaler upscale` does with it (tests/integration/test_formats.py):
exact frame counts (double for field-rate deinterlacing), the display aspect within 1 %, audio
with the source's duration. Interlace is decided once per job, at split, and every chunk is
treated alike."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lambdas import jobs
from lambdas.pipeline_local import run_local
from tests.formats import FAMILIES, TELECINED, audio_span, make_family_clip
from upscaler.cli import main as cli
from upscaler.demo import psnr_against_truth
from upscaler.evaluate.metrics import psnr
from upscaler.media.chunks import plan_chunks
from upscaler.media.limits import Limits
from upscaler.media.probe import probe, probe_with_packets
from upscaler.media.sample import render_frames

BIG = Limits(max_input_pixels=1 << 40)

#: family, job spec fields, the deinterlace mode split must record, output frames per frame.
CASES = [
    ("dvd-mpeg2-ps-ac3", {}, "off", 1),  # open GOPs with B-frames across chunk borders
    ("dvd-mpeg2-ps-ac3", {"square_pixels": True}, "off", 1),
    ("dv-avi-pcm", {}, "off", 1),  # PCM: AAC in the .mp4 output
    ("xvid-avi-mp3", {}, "off", 1),
    ("msmpeg4-avi-mp3", {}, "off", 1),
    ("ts-h264-interlaced-ac3", {}, "frame", 1),  # auto: combing seen at split
    ("ts-mpeg2-interlaced-ac3", {"deinterlace": "field"}, "field", 2),
]


@pytest.fixture(scope="module")
def family_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-families")

    def make(name: str) -> Path:
        path = root / f"{name}{FAMILIES[name].suffix}"
        return path if path.exists() else make_family_clip(path, FAMILIES[name])

    return make


@pytest.mark.parametrize(("name", "fields", "mode", "per_frame"), CASES)
def test_family_through_the_pipeline(name, fields, mode, per_frame, family_clip, tmp_path):
    fam, src = FAMILIES[name], family_clip(name)
    before = probe(src)
    out = tmp_path / "out.mp4"
    job = run_local(src, out, model="bicubic", scale=2, chunk_seconds=0.1, **fields)
    assert job["status"] == jobs.DONE, job
    assert job["deinterlace"] == mode
    assert job["square_pixels"] is bool(fields.get("square_pixels"))

    after = probe(out, BIG)
    assert after.video.frame_count == fam.frames * per_frame
    assert job["output_frames"] == fam.frames * per_frame
    if fields.get("square_pixels"):
        assert after.video.sample_aspect_ratio == 1
        width = round(fam.width * before.video.sample_aspect_ratio)
        assert (after.video.width, after.video.height) == (2 * width, 2 * fam.height)
    else:
        assert after.video.sample_aspect_ratio == (fam.sar or Fraction(1))
        assert (after.video.width, after.video.height) == (2 * fam.width, 2 * fam.height)
    ratio = after.video.display_aspect_ratio / before.video.display_aspect_ratio
    assert float(ratio) == pytest.approx(1, rel=0.01)
    assert len(after.audio) == 1
    (seconds, _), (expected, packet) = audio_span(out), audio_span(src)
    assert seconds == pytest.approx(expected, abs=packet + 1024 / fam.audio_rate)
    if fam.interlaced:  # woven from a progressive render: the render at x2 is the truth
        truth = render_frames(2 * fam.width, 2 * fam.height, 2 * fam.frames)
        score = psnr_against_truth(out, truth if per_frame == 2 else truth[0::2])
        assert score > 28, f"PSNR-Y {score:.2f} dB: fields were not deinterlaced"


def _rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_telecined_film_through_the_pipeline(tmp_path):
    """auto chooses ivtc at split; each chunk is decimated on its own (n - n // 5 frames) and
    the endpoint hands it the previous chunk's last frame to pair fields across the seam, as
    `upscale` does: frame for frame what `upscale` gives with the same chunks (without that
    frame, seam frames of this cadence differ: 18 dB)."""
    film = replace(TELECINED, options={**TELECINED.options, "g": "6"})  # four chunks
    src = make_family_clip(tmp_path / "film.vob", film)
    out, local = tmp_path / "out.mp4", tmp_path / "local.mp4"
    sizes = [c.frame_count for c in plan_chunks(*probe_with_packets(src), seconds=0.2)]
    job = run_local(src, out, model="bicubic", scale=2, chunk_seconds=0.2)
    assert job["status"] == jobs.DONE, job
    assert (job["deinterlace"], job["chunk_count"]) == ("ivtc", len(sizes)) and len(sizes) > 1
    expected = sum(n - n // 5 for n in sizes)
    assert probe(out).video.frame_count == job["output_frames"] == expected
    args = ["--model", "bicubic", "--chunk-seconds", "0.2", "--preset", "veryfast"]
    assert cli(["upscale", str(src), "-o", str(local), *args]) == 0
    scores = [psnr(a, b) for a, b in zip(_rgb(out), _rgb(local), strict=True)]
    assert min(scores) > 35, [round(x, 1) for x in scores]
