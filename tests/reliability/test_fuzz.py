"""Property: a mutated MP4, MKV or MPEG-TS file either upscales with every frame probe
counted, or fails with an UpscalerError subclass and a one-line message; never another
exception, never a hang, never an output on failure.

Hypothesis drives the mutations (derandomized: the same cases every run, so `make test` is
reproducible); `python -m benchmarks.reliability fuzz` runs hundreds more.
"""

from __future__ import annotations

import functools
import random
import signal
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.clips import ClipSpec, make_clip  # noqa: E402
from tests.reliability.fuzz import check_property, mutate  # noqa: E402
from upscaler.engine.runner import Upscaler  # noqa: E402

CASES = 25
SECONDS = 20  # one case; a hang fails the test instead of blocking the suite


@functools.cache
def seed_clip(container: str = "mp4") -> bytes:
    """8 frames 48x32 with audio, a keyframe every 4 frames (two chunks at 0.2 s).

    Module-level rather than a fixture: Hypothesis prints a failing case's arguments, and
    the clip's bytes would drown the seed that reproduces it."""
    spec = ClipSpec(width=48, height=32, frames=8, gop=4, rate=Fraction(25), container=container)
    with tempfile.TemporaryDirectory() as tmp:
        return make_clip(Path(tmp) / "seed.bin", spec).read_bytes()


@functools.cache
def bicubic() -> Upscaler:
    return Upscaler("bicubic", 2, "cpu")


def _alarm(signum, frame):
    raise TimeoutError(f"a fuzz case ran past {SECONDS} s")


@settings(
    max_examples=CASES,
    deadline=None,  # the alarm below bounds each case; CPU is shared in CI
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    container=st.sampled_from(["mp4", "matroska", "mpegts"]),
    seed=st.integers(0, 2**32 - 1),
    edits=st.integers(1, 8),
)
def test_mutated_video_never_escapes_the_error_hierarchy(container, seed, edits):
    data = mutate(seed_clip(container), random.Random(seed), edits)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        with tempfile.TemporaryDirectory(prefix="fuzz-") as work:
            check_property(data, Path(work), bicubic())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_unmutated_seed_upscales(tmp_path):
    assert check_property(seed_clip(), tmp_path, bicubic()) == "ok"
