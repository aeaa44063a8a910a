"""Shared fixtures: generated clips (cached per session) and the CLI runner."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from tests.clips import ClipSpec, make_clip

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def basic_clip(clip_dir) -> Path:
    """12 frames 96x64 H.264 + AAC at 25 fps."""
    return make_clip(clip_dir / "basic.mp4", ClipSpec())


@pytest.fixture(scope="session")
def chunked_clip(clip_dir) -> Path:
    """48 frames with a keyframe every 8 (so several chunks), B-frames, NTSC rate."""
    spec = ClipSpec(frames=48, gop=8, rate=Fraction(30000, 1001), options={"bf": "2"})
    return make_clip(clip_dir / "chunked.mp4", spec)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m upscaler.cli ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "upscaler.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
