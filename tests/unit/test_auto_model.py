"""The default model is picked from the source stream: lossless/rich -> clean, else blind."""

from __future__ import annotations

import json

import numpy as np

from tests.clips import ClipSpec, make_clip
from upscaler.cli import main
from upscaler.evaluate.footage import write_lossless_clip
from upscaler.media.probe import probe
from upscaler.models.auto import BLIND_MODEL, CLEAN_MODEL, choose_model


def test_compressed_video_gets_the_blind_model(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", ClipSpec(audio=False, options={"crf": "30"}))
    choice = choose_model(probe(clip), 2)
    assert choice.model == BLIND_MODEL
    assert 0 < choice.bits_per_pixel < 1 and "compressed" in choice.reason


def test_lossless_video_gets_the_clean_model(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    write_lossless_clip(frames, tmp_path / "a.mkv")
    assert choose_model(probe(tmp_path / "a.mkv"), 2).model == CLEAN_MODEL


def test_a_scale_without_blind_weights_falls_back_to_the_clean_model():
    choice = choose_model(None, 3)
    assert choice.model == CLEAN_MODEL and "no x3 weights" in choice.reason
    assert choose_model(None, 2).model == choose_model(None, 4).model == BLIND_MODEL


def test_probe_and_upscale_state_the_choice(tmp_path, capsys):
    clip = make_clip(tmp_path / "a.mp4", ClipSpec(audio=False, options={"crf": "30"}))
    assert main(["probe", str(clip), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["default_model"]["model"] == BLIND_MODEL
    assert main(["upscale", str(clip), "-o", str(tmp_path / "b.mp4"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == BLIND_MODEL and "bits/pixel" in out["model_choice"]
