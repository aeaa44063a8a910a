"""scripts/make_data.py: dev crops are the detailed parts of a held-out photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.scripts import script_module


def test_dev_crops_skip_flat_sky_and_do_not_overlap():
    """A photo whose top half is flat sky: fixed crop positions put half the crops there
    (their near-infinite PSNR swamped the dev mean); every chosen crop is textured."""
    rng = np.random.default_rng(0)
    photo = np.full((1080, 1920, 3), 120, np.uint8)
    photo[540:] = rng.integers(0, 256, (540, 1920, 3), dtype=np.uint8)
    with script_module("make_data") as make_data:
        crops = make_data.dev_crops(Image.fromarray(photo), 160)
    assert len(crops) == 4
    assert all(c.shape == (160, 160, 3) and c.std() > 20 for c in crops)
    assert len({c.tobytes() for c in crops}) == 4
