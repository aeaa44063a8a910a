"""The conversions around the model: exact where they were exact, and cheap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upscaler.engine.chroma import BicubicChroma, upscale_chroma
from upscaler.engine.onnx_runtime import OrtForward, RuntimeSelector
from upscaler.engine.pipeline import from_planes, to_planes
from upscaler.engine.runner import Planes
from upscaler.media.frames import DecodedFrame
from upscaler.models.resample import imresize


@pytest.mark.parametrize("shape", [(2, 2, 30, 48), (1, 2, 13, 21), (1, 1, 3, 5)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_chroma_conv_equals_matlab_bicubic(shape, scale):
    x = torch.rand(shape)
    size = (shape[2] * scale, shape[3] * scale)
    assert (upscale_chroma(x, size) - imresize(x, size=size)).abs().max() < 1e-6


def test_chroma_through_onnx_runtime_equals_matlab_bicubic(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path))
    x = torch.rand(3, 1, 30, 48)
    forward = RuntimeSelector(BicubicChroma(2), "onnx").forward_for(tuple(x.shape))
    assert isinstance(forward, OrtForward)
    assert (forward(x) - imresize(x, size=(60, 96))).abs().max() < 1e-6


def test_chroma_non_integer_sizes_take_the_general_path():
    x = torch.rand(1, 2, 10, 12)
    assert torch.equal(upscale_chroma(x, (21, 24)), imresize(x, size=(21, 24)))


@pytest.mark.parametrize("bits", [8, 10])
def test_planes_round_trip_exactly(bits):
    rng = np.random.default_rng(0)
    dtype, top = (np.uint16, 1023) if bits > 8 else (np.uint8, 255)
    frames = [
        DecodedFrame(
            [rng.integers(0, top + 1, s, dtype=dtype) for s in ((6, 8), (3, 4), (3, 4))], i, 1
        )
        for i in range(3)
    ]
    planes = to_planes(frames, bits)
    assert planes.y.dtype == torch.float32 and planes.y.shape == (3, 1, 6, 8)
    # the same values as the plain float64 formula
    assert torch.equal(
        planes.cb[1, 0], torch.from_numpy(frames[1].planes[1] / (255.0 * 2 ** (bits - 8))).float()
    )
    back = from_planes(planes, bits)
    for frame, out in zip(frames, back, strict=True):
        for a, b in zip(frame.planes, out, strict=True):
            assert b.dtype == dtype and np.array_equal(a, b)


def test_from_planes_rounds_and_clamps():
    y = torch.tensor([[[[-0.1, 0.5 / 255, 1.6 / 255, 1.2]]]])
    (out,) = from_planes(Planes(y, None, None), 8)
    assert out[0].tolist() == [[0, 0, 2, 255]]
