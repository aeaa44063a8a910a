"""The fused uint8 session: the same code values as the separate stages, used only where it
applies, and fed straight from views of decoded frames (line strides respected)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from torch import nn

from tests.clips import ClipSpec, make_clip
from upscaler.engine.fused import FusedYuv, _without_final_shuffle
from upscaler.engine.pipeline import from_planes, to_planes, upscale_chunk, upscale_group
from upscaler.engine.runner import Upscaler
from upscaler.evaluate.bench import sample_frames
from upscaler.media.frames import DecodedFrame, frame_to_planes
from upscaler.media.writer import EncodeSettings
from upscaler.models import load_model


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path / "cache"))


def _frames(width: int, height: int, n: int, layout: str = "420") -> list[DecodedFrame]:
    """Sample frames as 8-bit code planes: 4:2:0, 4:4:4 or grey."""
    frames = sample_frames(width, height, n)
    for frame in frames:
        y, cb, cr = frame.planes
        if layout == "444":
            frame.planes = [y, *(p.repeat(2, 0).repeat(2, 1) for p in (cb, cr))]
        elif layout == "grey":
            frame.planes = [y]
    return frames


def _separate(up: Upscaler, frames: list[DecodedFrame]) -> list[list[np.ndarray]]:
    return from_planes(up.upscale(to_planes(frames, 8), "bt709", False, 8), 8)


@pytest.mark.parametrize(
    ("layout", "width"), [("420", 96), ("420", 102), ("444", 96), ("grey", 96)]
)
def test_fused_equals_the_separate_stages(layout, width):
    """Tolerance: identical, except at most 1 code value on under 0.1 % of samples (a float
    landing on an exact .5 rounds the other way after ONNX Runtime reorders an op)."""
    frames = _frames(width, 64, 3, layout)  # 102: chroma 51 wide, odd
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    shapes = tuple(p.shape for p in frames[0].planes)
    fused = up.fused(shapes, 3, 8)
    assert isinstance(fused, FusedYuv)
    got, want = fused([f.planes for f in frames]), _separate(up, frames)
    for g_frame, w_frame in zip(got, want, strict=True):
        assert len(g_frame) == len(w_frame)
        for g, w in zip(g_frame, w_frame, strict=True):
            assert g.dtype == np.uint8 and g.shape == w.shape
            diff = np.abs(g.astype(int) - w.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.001
    # a smaller batch (a chunk's last) goes through the same session
    (single,) = fused([frames[1].planes])
    assert all(np.array_equal(a, b) for a, b in zip(single, got[1], strict=True))


def test_fused_only_where_it_reproduces_the_eager_path(monkeypatch):
    shapes = ((64, 96), (32, 48), (32, 48))
    assert Upscaler("fast", 2, "cpu", tile=0, runtime="torch").fused(shapes, 1, 8) is None
    assert Upscaler("fast", 2, "cpu", tile=0, runtime="auto").fused(shapes, 1, 8) is None  # tiny
    onnx = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    assert onnx.fused(shapes, 1, 10) is None  # 10-bit: the float path
    assert onnx.fused(((63, 96), (32, 48), (32, 48)), 1, 8) is None  # odd
    assert onnx.fused(((64, 96), (21, 48), (32, 48)), 1, 8) is None  # not a chroma layout
    assert Upscaler("fast", 2, "cpu", tile=32, runtime="onnx").fused(shapes, 1, 8) is None
    assert Upscaler("bicubic", 2, "cpu", tile=0, runtime="onnx").fused(shapes, 1, 8) is None
    assert Upscaler("fast", 2, "cpu", tile=0, runtime="onnx-int8").fused(shapes, 1, 8) is None


def test_frame_planes_are_views_that_respect_line_strides():
    frame = av.VideoFrame(100, 50, "yuv420p")  # 100 is padded to a longer line
    assert frame.planes[0].line_size > 100
    rng = np.random.default_rng(1)
    for plane in frame.planes:
        data = np.frombuffer(plane, np.uint8)
        data[:] = rng.integers(0, 256, data.shape, dtype=np.uint8)
    planes = frame_to_planes(frame)
    assert [p.shape for p in planes] == [(50, 100), (25, 50), (25, 50)]
    assert not planes[0].flags.c_contiguous  # a view, not a copy
    assert np.array_equal(planes[0], frame.to_ndarray()[:50])
    # and the fused batch copy reads them correctly
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    tight = [[np.ascontiguousarray(p) for p in planes]]
    fused = up.fused(tuple(p.shape for p in planes), 1, 8)
    assert all(
        np.array_equal(a, b) for a, b in zip(fused([planes])[0], fused(tight)[0], strict=True)
    )


def test_a_chunk_through_the_fused_path_equals_the_separate_stages(tmp_path):
    """Decoded frames (strided views) -> fused session -> lossless x264: the same pictures as
    the float path through the same runtime."""
    clip = make_clip(tmp_path / "c.mp4", ClipSpec(width=100, height=64, frames=5, audio=False))
    lossless = EncodeSettings(crf=0, preset="ultrafast")
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    upscale_chunk(clip, tmp_path / "fused.mp4", up, lossless, batch=2)
    assert up._fused and all(isinstance(f, FusedYuv) for f in up._fused.values())
    plain = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    plain.fused = lambda *args: None  # the separate stages
    upscale_chunk(clip, tmp_path / "plain.mp4", plain, lossless, batch=2)

    def decoded(path):
        with av.open(str(path)) as container:
            return [frame_to_planes(f) for f in container.decode(video=0)]

    fused, separate = decoded(tmp_path / "fused.mp4"), decoded(tmp_path / "plain.mp4")
    assert len(fused) == len(separate) == 5
    for a_frame, b_frame in zip(fused, separate, strict=True):
        for a, b in zip(a_frame, b_frame, strict=True):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_upscale_group_is_the_pipeline_entry_for_both_paths():
    frames = _frames(96, 64, 2)
    eager = Upscaler("fast", 2, "cpu", tile=0, runtime="torch")
    out = upscale_group(eager, frames, "bt709", False, 8)
    want = _separate(eager, frames)
    assert all(np.array_equal(a, b) for a, b in zip(out[0], want[0], strict=True))


class _ShuffleThenBlur(nn.Module):
    """A net whose pixel shuffle is not its last step."""

    def __init__(self) -> None:
        super().__init__()
        self.shuffle = nn.PixelShuffle(2)
        self.blur = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.shuffle(x.repeat(1, 4, 1, 1)))


def test_rounding_moves_before_the_shuffle_only_when_it_is_the_last_step():
    x = torch.rand(1, 1, 32, 48)
    trunk, factor = _without_final_shuffle(load_model("fast", 2), x)
    assert factor == 4 and isinstance(trunk.shuffle, nn.Identity)
    assert isinstance(load_model("fast", 2).shuffle, nn.PixelShuffle)  # the model is untouched
    model = _ShuffleThenBlur()
    assert _without_final_shuffle(model, x) == (model, 1)
