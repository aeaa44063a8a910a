"""`fast-mf`: a window of neighbouring frames into `fast`, and its training samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.test_train import _cfg as train_config
from upscaler.models import load_model
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.fast import FastSR
from upscaler.models.multiframe import FastMultiFrame
from upscaler.models.registry import get_spec
from upscaler.models.resample import imresize
from upscaler.train.data import PatchSampler, centre_frame, stack_window
from upscaler.train.loop import train
from upscaler.train.video import degrade_clip


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("radius", [1, 2])
def test_widened_single_frame_model_gives_its_output(scale, radius):
    """Step 0 of training from `fast`: the neighbours' weights are zero, the output is fast's."""
    single = FastSR(scale).eval()
    multi = FastMultiFrame(scale, radius=radius).eval()
    multi.load_state_dict(multi.from_single_frame(single.state_dict()))
    x = torch.rand(2, 2 * radius + 1, 20, 26)
    with torch.no_grad():
        assert torch.equal(multi(x), single(x[:, radius : radius + 1]))


def test_skip_is_bicubic_of_the_centre_frame_only():
    model = FastMultiFrame(2).eval()
    with torch.no_grad():
        model.body[-1].weight.zero_()
        x = torch.rand(1, 3, 20, 26)
        assert torch.allclose(model(x), imresize(x[:, 1:2], scale=2), atol=1e-5)


def test_window_is_declared_and_cost_is_close_to_fast():
    assert get_spec("fast-mf").window == FastMultiFrame(2).window == 3
    assert get_spec("fast").window == FastSR.window == 1
    params = [sum(p.numel() for p in m.parameters()) for m in (FastSR(2), FastMultiFrame(2))]
    assert params[1] - params[0] == 32 * 4 * 2 * 9  # only the first conv grows


def test_stack_window_is_frame_major():
    frames = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 2)
    out = stack_window(frames, torch.tensor([1, 3]), 1)
    assert out[:, :, 0, 0].tolist() == [[0, 1, 2], [2, 3, 4]]
    assert torch.equal(centre_frame(out, 3, "y"), frames[[1, 3]])


def test_window_sampler_shapes_and_determinism():
    arr = np.random.default_rng(0).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    a = PatchSampler(arr, 2, 32, "y", seed=2, clip=degrade_clip, window=3).sample(4)
    b = PatchSampler(arr, 2, 32, "y", seed=2, clip=degrade_clip, window=3).sample(4)
    assert a[0].shape == (4, 3, 16, 16) and a[1].shape == (4, 1, 32, 32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="degradation=video"):
        PatchSampler(arr, 2, 32, "y", window=3)


@pytest.mark.parametrize("degradation", ["video", "codec"])
def test_trains_from_a_single_frame_checkpoint(tmp_path, degradation):
    rng = np.random.default_rng(0)
    small = torch.from_numpy(rng.integers(0, 256, (8, 3, 12, 12)).astype(np.float32))
    patches = torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear")
    np.save(tmp_path / "train.npy", patches.permute(0, 2, 3, 1).round().byte().numpy())
    np.save(tmp_path / "dev.npy", np.load(tmp_path / "train.npy")[:2])
    config = {"width": 8, "depth": 2}
    start = tmp_path / "fast.pt"
    save_checkpoint(start, "fast", 2, config, FastSR(2, **config).state_dict())
    cfg = train_config(tmp_path, tmp_path / "run", arch="fast-mf", steps=2, batch_size=3)
    cfg.model_config, cfg.degradation, cfg.init_from = config, degradation, str(start)
    model = load_model(str(train(cfg)), 2)
    assert model.window == 3
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 1, 32, 32)
