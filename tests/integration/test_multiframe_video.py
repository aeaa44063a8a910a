"""A multi-frame model in the video engine: chunked output equals whole-file output."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from upscaler.engine.pipeline import upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.job import prepare
from upscaler.media.limits import Limits
from upscaler.media.writer import EncodeSettings
from upscaler.models.multiframe import FastMultiFrame

LOSSLESS = EncodeSettings(crf=0)


def _luma(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def window_upscaler() -> Upscaler:
    torch.manual_seed(0)  # random weights: every neighbour changes the output
    return Upscaler(FastMultiFrame(2, width=8, depth=2), 2, "cpu", runtime="torch")


@pytest.fixture(scope="module")
def whole(chunked_clip, window_upscaler, tmp_path_factory) -> np.ndarray:
    """The clip upscaled as one chunk."""
    out = tmp_path_factory.mktemp("whole") / "whole.mp4"
    assert upscale_video(chunked_clip, out, window_upscaler, LOSSLESS, None, 0).chunks == 1
    return _luma(out)


def test_tiny_chunks_give_the_whole_files_frames(chunked_clip, tmp_path, window_upscaler, whole):
    out = tmp_path / "chunked.mp4"
    assert upscale_video(chunked_clip, out, window_upscaler, LOSSLESS, None, 0.25).chunks >= 5
    assert np.array_equal(_luma(out), whole)


def test_without_neighbours_the_chunk_edges_differ(chunked_clip, tmp_path, window_upscaler, whole):
    """What the context is for: a chunk alone repeats its own edge frames instead."""
    chunks = prepare(chunked_clip, 2, 0.25, tmp_path / "src", Limits()).chunks
    upscale_chunk(
        tmp_path / "src" / chunks[1].name, tmp_path / "alone.mp4", window_upscaler, LOSSLESS
    )
    alone = _luma(tmp_path / "alone.mp4")
    start = chunks[0].frame_count
    differs = [not np.array_equal(a, w) for a, w in zip(alone, whole[start:], strict=False)]
    assert len(alone) == chunks[1].frame_count
    assert differs[0] and differs[-1] and not any(differs[1:-1])
