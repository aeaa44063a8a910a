"""Degradations, perceptual loss loading and the GAN stage on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upscaler.media.roundtrip import h264_roundtrip
from upscaler.train.degrade import gaussian_blur, jpeg, real_lr
from upscaler.train.loop import TrainConfig, train
from upscaler.train.perceptual import PerceptualLoss, _vgg19_features


def test_real_lr_is_reproducible_and_8bit():
    hr = torch.rand(4, 3, 32, 32)
    a = real_lr(hr, 2, torch.Generator().manual_seed(1))
    b = real_lr(hr, 2, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    assert torch.equal(a, a.mul(255).round().div(255))


def test_codecs_round_trip_shapes():
    batch = np.random.default_rng(0).integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    assert h264_roundtrip(batch, 30, preset="veryfast").shape == batch.shape
    assert jpeg(batch, 50).shape == batch.shape
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)


def test_perceptual_needs_local_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("UPSCALER_VGG19", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match="perceptual loss DISABLED"):
        assert PerceptualLoss.from_local(str(tmp_path / "missing.pth")) is None
    state = {f"features.{k}": v for k, v in _vgg19_features().state_dict().items()}
    torch.save(state, tmp_path / "vgg.pth")
    loss = PerceptualLoss.from_local(str(tmp_path / "vgg.pth"))
    x = torch.rand(1, 1, 32, 32)
    assert loss(x, x).item() == 0 and loss(x, 1 - x).item() > 0


def test_gan_stage_runs_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    cfg = dict(
        data=str(tmp_path / "p.npy"),
        dev=None,
        out_dir=str(tmp_path / "run"),
        steps=4,
        batch_size=2,
        crop=32,
        val_every=2,
        log_every=1,
        gan=True,
        threads=1,
        model_config={"width": 16, "depth": 2},
    )
    with pytest.warns(UserWarning, match="perceptual loss DISABLED"):
        train(TrainConfig(**cfg, stop_at=2))
    with pytest.warns(UserWarning):
        best = train(TrainConfig(**cfg, resume=True))
    meta = torch.load(best, weights_only=True)["meta"]
    assert meta["steps"] == 4 and "disabled" in meta["stage"]
