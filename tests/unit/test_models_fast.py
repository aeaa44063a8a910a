"""The `fast` architecture, the registry and checkpoints."""

from __future__ import annotations

import pytest
import torch

from upscaler.errors import ModelError
from upscaler.models import load_model
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.fast import FastSR
from upscaler.models.resample import imresize


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(24, 32), (25, 31)])
def test_fast_output_shape(scale, size):
    model = FastSR(scale).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, *size))
    assert out.shape == (2, 1, size[0] * scale, size[1] * scale)


@pytest.mark.parametrize("scale", [2, 4])
def test_fast_with_zero_body_is_matlab_bicubic(scale):
    model = FastSR(scale).eval()
    with torch.no_grad():
        model.body[-1].weight.zero_()
        x = torch.rand(1, 1, 20, 26)
        assert torch.allclose(model(x), imresize(x, scale=scale), atol=1e-5)


def test_fast_params_in_budget():
    params = sum(p.numel() for p in FastSR(2).parameters())
    assert 10_000 <= params <= 40_000


def _save(path, arch="fast", scale=2, state=None, config=None):
    model = FastSR(scale)
    save_checkpoint(path, arch, scale, config or {}, state or model.state_dict(), {"steps": 1})
    return model


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "m.pt"
    model = _save(path).eval()
    loaded = load_model(str(path), 2)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.meta["steps"] == 1


def test_checkpoint_wrong_scale(tmp_path):
    _save(tmp_path / "m.pt")
    with pytest.raises(ModelError, match="x2 fast checkpoint, not x4"):
        load_model(str(tmp_path / "m.pt"), 4)


def test_checkpoint_wrong_arch(tmp_path):
    path = tmp_path / "m.pt"
    _save(path, arch="fast", state={"nope": torch.zeros(1)})
    with pytest.raises(ModelError, match="does not match the fast architecture"):
        load_model(str(path), 2)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_model(str(path), 2)


def test_unknown_model_and_scale():
    with pytest.raises(ModelError, match="unknown model"):
        load_model("nope", 2)
    with pytest.raises(ModelError, match="supports scale"):
        load_model("fast", 3)
