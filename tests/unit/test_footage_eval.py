"""`upscaler eval --clips`: a tiny generated clip, shrunk, encoded, upscaled and scored."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from upscaler.cli import main
from upscaler.engine.image import upscale_image
from upscaler.evaluate.footage import tpsnr_y, upscale_clip, write_lossless_clip
from upscaler.models.multiframe import FastMultiFrame


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """One 4-frame 64x48 clip: a smooth pattern panning 1 px per frame, stored lossless."""
    root = tmp_path_factory.mktemp("clips")
    y, x = np.mgrid[0:48, 0:80]
    base = 128 + 60 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None] * [1, 0.8, 0.6]
    frames = np.stack([base[:, t : t + 64] for t in range(4)]).round().astype(np.uint8)
    write_lossless_clip(frames, root / "pan.mkv")
    return root


def test_tpsnr_is_infinite_for_a_perfect_clip_and_drops_with_flicker():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert math.isinf(tpsnr_y(clip, clip))
    flicker = clip.astype(int)
    flicker[1] += 8  # one frame brighter: the differences around it are wrong
    assert tpsnr_y(np.clip(flicker, 0, 255).astype(np.uint8), clip) < 40


def test_eval_clips_scores_every_model_at_every_crf(clip_dir, capsys):
    args = ["--crf", "0,30", "--model", "bicubic,lanczos", "--frames", "4", "--json"]
    code = main(["eval", "--clips", str(clip_dir), *args])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clips"] == ["pan"] and result["crfs"] == [0, 30]
    assert list(result["results"]) == ["bicubic", "lanczos"]
    clean, coded = result["results"]["bicubic"]["0"], result["results"]["bicubic"]["30"]
    assert 25 < coded["psnr_y"] < clean["psnr_y"]  # compression costs quality
    assert len(clean["clips"][0]["frame_psnr_y"]) == 4
    for row in (clean, coded):
        assert 0 < row["ssim_y"] <= 1 and math.isfinite(row["tpsnr_y"])


def test_eval_needs_exactly_one_source(capsys, tmp_path):
    assert main(["eval", "--clips", str(tmp_path)]) != 0  # empty folder
    assert "no clips" in capsys.readouterr().err
    assert main(["eval"]) != 0
    assert "exactly one of --dataset and --clips" in capsys.readouterr().err


def test_window_model_is_fed_each_frames_neighbours():
    torch.manual_seed(0)
    model = FastMultiFrame(2, width=8, depth=2).eval()
    lr = np.random.default_rng(1).integers(0, 256, (3, 12, 16, 3), dtype=np.uint8)
    sr = upscale_clip(lr, model)
    assert sr.shape == (3, 24, 32, 3)
    for t, around in enumerate(([0, 0, 1], [0, 1, 2], [1, 2, 2])):
        assert np.array_equal(sr[t], upscale_image(lr[t], model, lr[around]))
    assert not np.array_equal(sr[1], upscale_image(lr[1], model))  # neighbours matter
