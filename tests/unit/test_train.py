"""Training loop on tiny synthetic data: learns, resumes exactly, EMA behaves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from upscaler.models import load_model
from upscaler.models.checkpoint import read_checkpoint
from upscaler.train.data import PatchSampler
from upscaler.train.ema import EMA
from upscaler.train.loop import TrainConfig, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Smooth random 'photos' (upsampled noise), so there is something to learn."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (24, 12, 12, 3)).astype(np.float32)
    big = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2), size=(48, 48), mode="bilinear"
    )
    patches = big.permute(0, 2, 3, 1).round().clamp(0, 255).byte().numpy()
    np.save(root / "train.npy", patches)
    np.save(root / "dev.npy", patches[:2])
    return root


def _cfg(data, out, **kw):
    base = dict(
        data=str(data / "train.npy"),
        dev=str(data / "dev.npy"),
        out_dir=str(out),
        steps=40,
        batch_size=4,
        crop=32,
        lr=3e-3,
        warmup=2,
        val_every=10,
        log_every=5,
        model_config={"width": 16, "depth": 2},
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_sampler_shapes_and_determinism(data):
    arr = np.load(data / "train.npy")
    a = PatchSampler(arr, 2, 32, "y", seed=3).sample(3)
    b = PatchSampler(arr, 2, 32, "y", seed=3).sample(3)
    assert a[0].shape == (3, 1, 16, 16) and a[1].shape == (3, 1, 32, 32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    rgb = PatchSampler(arr, 4, 32, "rgb").sample(2)
    assert rgb[0].shape == (2, 3, 8, 8)


def test_training_reduces_loss_and_writes_outputs(data, tmp_path):
    best = train(_cfg(data, tmp_path))
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    assert (tmp_path / "curve.png").stat().st_size > 0
    model = load_model(str(best), 2)
    assert model.meta["params"] > 0 and "dev_psnr_y" in model.meta["metrics"]


def test_resume_continues_exactly(data, tmp_path):
    train(_cfg(data, tmp_path / "straight", steps=20))
    train(_cfg(data, tmp_path / "split", steps=20, stop_at=10))
    train(_cfg(data, tmp_path / "split", steps=20, resume=True))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 20
    for key in ("model", "ema"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name} differs after resume"


@pytest.mark.parametrize(
    ("decay", "step", "lag"),
    [
        (0.5, 1000, 0.5),  # steady state: decay as given
        (0.999, 0, 0.1),  # warm-up: min(0.999, 1/10), 90% of the way at once
    ],
)
def test_ema_tracks_weights(decay, step, lag):
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=decay)
    with torch.no_grad():
        target = model.weight.clone() + 1
        model.weight.add_(1)
    ema.update(model, step=step)
    assert torch.allclose(ema.model.weight, target - lag)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_reparam_training_ships_the_folded_plain_net(data, tmp_path):
    best = train(_cfg(data, tmp_path, model_config={"width": 8, "depth": 2, "reparam": True}))
    assert read_checkpoint(best)["config"] == {"width": 8, "depth": 2}
    model = load_model(str(best), 2)  # strict load into the plain net
    assert not any("squeeze" in k for k in model.state_dict())
    assert model.meta["params"] == sum(p.numel() for p in model.parameters())
