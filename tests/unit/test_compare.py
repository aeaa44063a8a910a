"""`upscaler compare` sheets: one panel per model, the original last when given."""

from __future__ import annotations

import numpy as np
import pytest

from upscaler.errors import InputError
from upscaler.evaluate.compare import compare_image


def _images():
    rng = np.random.default_rng(0)
    hr = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    return hr[::2, ::2].copy(), hr  # LR 24x32, HR 48x64


def test_reference_panel_is_the_same_square_of_the_original():
    lr, hr = _images()
    sheet = np.asarray(compare_image(lr, ["bicubic"], 2, crop=16, zoom=1, reference=hr))
    assert sheet.shape == (32 + 24, 2 * 32, 3)  # two 32-px panels under a 24-px label row
    ref_panel = sheet[24:, 32:]
    matches = [
        (t, x)
        for t in range(0, hr.shape[0] - 31)
        for x in range(0, hr.shape[1] - 31)
        if np.array_equal(hr[t : t + 32, x : x + 32], ref_panel)
    ]
    assert matches and all(t % 2 == 0 and x % 2 == 0 for t, x in matches)


def test_reference_smaller_than_scale_times_input_is_refused():
    lr, hr = _images()
    with pytest.raises(InputError, match="smaller than"):
        compare_image(lr, ["bicubic"], 4, crop=16, reference=hr)
