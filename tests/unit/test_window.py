"""Sliding windows for multi-frame models: the same windows wherever a video is cut."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from upscaler.engine.onnx_runtime import OrtForward, RuntimeSelector
from upscaler.engine.runner import Planes, Upscaler
from upscaler.engine.window import sliding_windows, stack_luma
from upscaler.media.frames import DecodedFrame
from upscaler.models.multiframe import FastMultiFrame


def _frames(n: int) -> list[DecodedFrame]:
    return [DecodedFrame([np.full((2, 2), i, np.uint8)], i, 1) for i in range(n)]


def _ids(windows) -> list[tuple[int, list[int]]]:
    return [(f.pts, [int(p[0, 0]) for p in planes]) for f, planes in windows]


def test_window_repeats_the_ends_of_the_video():
    assert _ids(sliding_windows(_frames(3), 1)) == [(0, [0, 0, 1]), (1, [0, 1, 2]), (2, [1, 2, 2])]
    assert _ids(sliding_windows(_frames(1), 2)) == [(0, [0, 0, 0, 0, 0])]
    assert _ids(sliding_windows([], 1)) == []


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("cuts", [(1,), (4,), (2, 3, 7), (1, 2, 3, 4, 5, 6, 7, 8)])
def test_chunks_with_context_see_the_whole_videos_windows(radius, cuts):
    video = _frames(9)
    whole = _ids(sliding_windows(video, radius))
    bounds = [0, *cuts, len(video)]
    chunked = []
    for start, stop in itertools.pairwise(bounds):
        before, after = video[max(0, start - radius) : start], video[stop : stop + radius]
        chunked += _ids(sliding_windows(video[start:stop], radius, before, after))
    assert chunked == whole


def test_single_frame_model_windows_are_the_frames():
    assert _ids(sliding_windows(_frames(2), 0)) == [(0, [0]), (1, [1])]


def test_stack_luma_normalises_codes():
    x = stack_luma(list(sliding_windows(_frames(2), 1)), 8)
    assert x.shape == (2, 3, 2, 2)
    assert torch.equal(x[1, :, 0, 0], torch.tensor([0.0, 1.0, 1.0]) / 255)


def test_a_lone_frame_is_its_own_window():
    """Stills and the live path give one Y plane: it fills the whole window."""
    torch.manual_seed(0)
    up = Upscaler(FastMultiFrame(2, width=8, depth=2), 2, "cpu", runtime="torch")
    y = torch.rand(1, 1, 8, 10)
    alone = up.upscale(Planes(y, None, None)).y
    repeated = up.upscale(Planes(y.expand(-1, 3, -1, -1), None, None)).y
    assert up.radius == 1 and torch.equal(alone, repeated)


def test_window_model_exports_to_onnx(tmp_path, monkeypatch):
    """The real-time path: ONNX Runtime takes the stacked window like eager does."""
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    model = FastMultiFrame(2, width=8, depth=2).eval()
    forward = RuntimeSelector(model, "onnx").forward_for((2, 3, 36, 50))
    assert isinstance(forward, OrtForward)
    x = torch.rand(2, 3, 36, 50)
    with torch.inference_mode():
        assert (forward(x) - model(x)).abs().max() < 1e-5
