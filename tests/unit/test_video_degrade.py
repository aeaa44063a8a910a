"""Video degradations: real codecs over a group of frames, reproducible from the seed."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from upscaler.train.codec import CodecChoice, encode_decode
from upscaler.train.data import PatchSampler, bicubic_lr
from upscaler.train.video import degrade_clip, pan_clip


@pytest.mark.parametrize(
    "choice",
    [
        CodecChoice("h264", crf=30, gop=4),
        CodecChoice("hevc", crf=32, gop=4),  # 24x20 frames: padded to x265's minimum
        CodecChoice("mpeg2video", bit_rate=40000, gop=3),
        CodecChoice("mpeg4", bit_rate=40000, gop=3),
    ],
)
def test_each_codec_round_trips_a_group_of_frames(choice):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 20, 24, 3), dtype=np.uint8)
    out = encode_decode(frames, choice)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frames)  # lossy


def test_lossless_round_trip_keeps_luma_exact():
    """No brightness drift through the colour conversion (swscale's RGB path darkens ~1 level)."""
    rng = np.random.default_rng(1)
    frames = rng.integers(16, 236, (2, 32, 32, 3), dtype=np.uint8)
    out = encode_decode(frames, CodecChoice("h264", crf=0, gop=2))
    y_in = frames.astype(float) @ [0.299, 0.587, 0.114]
    y_out = out.astype(float) @ [0.299, 0.587, 0.114]
    assert abs((y_out - y_in).mean()) < 0.1


def test_pan_clip_moves_over_the_patch_at_whole_pixels():
    """Every frame is an exact crop of the patch (a sharp target, never resampled)."""
    patch = torch.rand(3, 40, 40)
    for seed in range(8):
        clip = pan_clip(patch, 4, 24, torch.Generator().manual_seed(seed))
        assert clip.shape == (4, 3, 24, 24)
        crops = {(y, x): patch[:, y : y + 24, x : x + 24] for y in range(17) for x in range(17)}
        at = [next(k for k, c in crops.items() if torch.equal(c, frame)) for frame in clip]
        assert len(set(at)) > 1, "the pan moves"
        steps = [abs(a - b) for p, q in pairwise(at) for a, b in zip(p, q, strict=True)]
        assert max(steps) <= 3, steps


def test_degrade_clip_is_reproducible_and_clean_means_bicubic():
    hr = pan_clip(torch.rand(3, 48, 48), 4, 32, torch.Generator().manual_seed(0))
    a = degrade_clip(hr, 2, torch.Generator().manual_seed(5), clean=0.0)
    b = degrade_clip(hr, 2, torch.Generator().manual_seed(5), clean=0.0)
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    clean = degrade_clip(hr, 2, torch.Generator().manual_seed(5), clean=1.0)
    assert torch.equal(clean, bicubic_lr(hr, 2))


def test_codec_only_degradation_is_bicubic_then_a_codec():
    """`camera=False` (degradation=codec): no blur or noise, always a lossy codec over the clip
    of MATLAB bicubic frames, so it stays near bicubic but never equals it."""
    hr = pan_clip(torch.rand(3, 48, 48), 4, 32, torch.Generator().manual_seed(0))
    bicubic = bicubic_lr(hr, 2)
    for seed in range(4):
        gen = torch.Generator().manual_seed(seed)
        lr = degrade_clip(hr, 2, gen, clean=0.0, camera=False)
        assert lr.shape == bicubic.shape and not torch.equal(lr, bicubic)
        assert (lr - bicubic).abs().mean() < 0.1  # the codec's error, not a different image


def test_clip_sampler_batches_and_determinism():
    arr = np.random.default_rng(0).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    a = PatchSampler(arr, 2, 32, "y", seed=2, clip=degrade_clip).sample(5)
    b = PatchSampler(arr, 2, 32, "y", seed=2, clip=degrade_clip).sample(5)
    assert a[0].shape == (5, 1, 16, 16) and a[1].shape == (5, 1, 32, 32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
