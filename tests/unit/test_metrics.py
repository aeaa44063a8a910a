"""PSNR/SSIM on Y, and the published bicubic number on Set5 x2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from upscaler.evaluate.metrics import detail_ratio, modcrop, psnr, rgb_to_y, ssim

SET5 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "Set5"


def test_rgb_to_y_range():
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235, abs=1e-3)


def test_psnr_and_ssim_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 40), dtype=np.uint8).astype(np.float64)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a + 1, a) == pytest.approx(48.13, abs=0.01)  # MSE 1
    assert ssim(255 - a, a) < 0
    assert psnr(a + 1, a, shave=2) == pytest.approx(48.13, abs=0.01)


def test_modcrop():
    assert modcrop(np.zeros((9, 11, 3)), 4).shape == (8, 8, 3)


@pytest.mark.skipif(not SET5.is_dir(), reason="evaluation datasets not present")
def test_bicubic_set5_x2_matches_published():
    from upscaler.evaluate.quality import evaluate

    result = evaluate("bicubic", 2, SET5)
    assert result["psnr_y"] == pytest.approx(33.66, abs=0.05)
    assert 0.925 < result["ssim_y"] < 0.935
    assert 0.40 < result["detail_y"] < 0.48  # bicubic x2 keeps under half the fine detail


def test_h264_roundtrip_loses_more_at_higher_crf():
    from upscaler.media.roundtrip import h264_roundtrip

    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    img = img[:47, :63]  # odd sizes are padded for 4:2:0 and cropped back
    near, far = h264_roundtrip(img[None], 10)[0], h264_roundtrip(img[None], 40)[0]
    assert near.shape == far.shape == img.shape
    assert psnr(near, img) > psnr(far, img) + 3


def test_detail_ratio_tells_blur_from_detail():
    rng = np.random.default_rng(0)
    hr = np.kron(rng.integers(0, 256, (16, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    lr = hr[::4, ::4]
    blurry = np.kron(lr, np.ones((4, 4, 1))).astype(np.float64)
    kernel = np.ones(5) / 5
    for axis in (0, 1):
        blurry = np.apply_along_axis(np.convolve, axis, blurry, kernel, mode="same")
    noisy = np.clip(hr + rng.normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(hr, hr) == pytest.approx(1.0)
    assert detail_ratio(blurry.round().astype(np.uint8), hr, 4) < 0.8
    assert detail_ratio(noisy, hr) > 1.2  # noise counts as "detail": not a quality score
