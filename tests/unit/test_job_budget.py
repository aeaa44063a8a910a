"""Fail before paying: split's estimates of merge scratch space and chunk endpoint time."""

from __future__ import annotations

import pytest

from upscaler.errors import LimitExceededError
from upscaler.job.budget import (
    LAMBDA_MAX_EPHEMERAL_MIB,
    check_chunk_time,
    check_merge_scratch,
    merge_scratch_bytes,
)
from upscaler.media.chunks import plan_chunks
from upscaler.media.limits import Limits
from upscaler.media.probe import probe_with_packets


def test_merge_scratch_is_the_source_plus_twice_the_upscaled_estimate():
    assert merge_scratch_bytes(100, 2) == 100 + 2 * 400
    check_merge_scratch(300 * 2**20, 4, LAMBDA_MAX_EPHEMERAL_MIB)  # 300 MiB x4: 9.7 GiB fits
    with pytest.raises(LimitExceededError) as info:
        check_merge_scratch(400 * 2**20, 4, LAMBDA_MAX_EPHEMERAL_MIB)
    assert "about 12.9 GiB of scratch space" in str(info.value)
    assert "limit of 10240 MiB (Lambda's maximum" in str(info.value)
    with pytest.raises(LimitExceededError, match=r"raise the merge function's ephemeral storage"):
        check_merge_scratch(100 * 2**20, 2, 512)


def test_chunk_time_uses_the_throughput_table(chunked_clip):
    info, packets = probe_with_packets(chunked_clip)
    chunks = plan_chunks(info, packets, 0.25, Limits())  # 6 chunks of 8 frames, 96x64
    # esrgan-lite on a CPU instance: 0.0018 input Mpx/s per vCPU (measured), 4 vCPUs.
    check_chunk_time(chunks, info, "esrgan-lite", 4, "ml.m5.xlarge", timeout_s=900)
    with pytest.raises(LimitExceededError) as refused:
        check_chunk_time(chunks, info, "esrgan-lite", 4, "ml.m5.xlarge", timeout_s=5)
    words = str(refused.value)
    assert "chunk 0 (8 frames) needs about 7 s of esrgan-lite x4 on ml.m5.xlarge" in words
    assert "async invocation limit of 5 s" in words and "chunk_seconds context parameter" in words
    # The GAN stage is the same network: the same estimate, the same refusal.
    with pytest.raises(LimitExceededError, match="needs about 7 s of esrgan-lite-gan x4"):
        check_chunk_time(chunks, info, "esrgan-lite-gan", 4, "ml.m5.xlarge", timeout_s=5)
    # No rate for this model: nothing to estimate from, so nothing is refused.
    check_chunk_time(chunks, info, "someone-elses-model", 4, "ml.m5.xlarge", timeout_s=1)
