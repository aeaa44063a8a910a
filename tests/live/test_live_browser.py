"""A real browser on the live page: headless Chromium (Debian's `chromium` package) loads it
over loopback and takes a screenshot, kept as a test artifact; both views must show video."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1000,500",
    "--timeout=8000",  # stop loading after 8 s at most (the MJPEG streams never "finish")
)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_page_shows_original_and_enhanced_in_a_real_browser(live_clip, live_process, tmp_path):
    live = live_process(
        str(live_clip), "--serve", "127.0.0.1:0", "--loop", "--duration", "20", "--threads", "1"
    )
    url = live.wait_for("live: serving").split()[-1]
    shot = tmp_path / "live-page.png"
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert shot.is_file(), result.stderr[-2000:]
    print(f"screenshot: {shot}")

    image = np.asarray(Image.open(shot).convert("RGB")).astype(np.float32)
    height, width, _ = image.shape
    assert (width, height) == (1000, 500)
    # the views sit side by side under the header: each half holds a photo, not background
    body = image[90:340]
    left, right = body[:, 20 : width // 2 - 20], body[:, width // 2 + 20 : width - 20]
    for name, view in (("original", left), ("enhanced", right)):
        assert view.std() > 15, f"the {name} view looks blank"
        assert abs(view.mean() - 0x11) > 20, f"the {name} view is page background"
    # both show the same frame of the same scene (the enhanced one is just sharper)
    assert np.abs(left.mean(axis=(0, 1)) - right.mean(axis=(0, 1))).max() < 25
    # the page polled /stats and the process served it
    assert live.proc.poll() is None
