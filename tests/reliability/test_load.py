"""Concurrent jobs through the moto pipeline (`python -m benchmarks.reliability load` runs
the full 24 and reports throughput and memory in docs/RELIABILITY.md)."""

from __future__ import annotations

import pytest

from tests.reliability.load import run_load

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_concurrent_jobs_all_complete_with_correct_outputs(tmp_path):
    result = run_load(tmp_path, n_jobs=6, workers=3, timeout=120)
    assert (result.done, result.failed) == (6, 0), result
    assert result.frames == 2 * (12 + 16 + 20)  # jobs cycle through three clips
