"""The job layer's steps on real clips: prepare, verify_chunk, finish."""

from __future__ import annotations

import pytest

from upscaler.errors import LimitExceededError, MediaError
from upscaler.job import finish, media_facts, prepare, verify_chunk
from upscaler.media.limits import Limits
from upscaler.media.probe import probe


def test_prepare_cuts_keyframe_chunks_that_cover_every_frame(chunked_clip, tmp_path):
    prepared = prepare(chunked_clip, 2, 0.25, tmp_path / "chunks", Limits())
    assert len(prepared.chunks) == len(prepared.paths) == 6
    assert [p.name for p in prepared.paths] == [c.name for c in prepared.chunks]
    assert sum(c.frame_count for c in prepared.chunks) == prepared.info.video.frame_count == 48
    assert [probe(p).video.frame_count for p in prepared.paths] == [8] * 6
    facts = media_facts(prepared.info)
    assert facts["frame_count"] == 48 and facts["frame_rate"] == "30000/1001"
    assert facts["audio_streams"] == 1 and facts["width"] == 96


def test_prepare_refuses_an_oversized_output_before_writing_anything(chunked_clip, tmp_path):
    with pytest.raises(LimitExceededError, match="output 384x256 is over the limit"):
        prepare(chunked_clip, 4, 0.25, tmp_path / "chunks", Limits(max_output_pixels=90_000))
    assert not (tmp_path / "chunks").exists()


def test_verify_chunk_names_the_chunk_and_both_counts():
    verify_chunk(3, 8, 8)
    with pytest.raises(MediaError, match="chunk 3: decoded 7 frames, expected 8"):
        verify_chunk(3, 7, 8)


def test_finish_merges_and_checks_the_frame_count(chunked_clip, tmp_path):
    prepared = prepare(chunked_clip, 2, 0.25, tmp_path / "chunks", Limits())
    out = tmp_path / "out.mp4"
    info = finish(prepared.paths, chunked_clip, out, rotation=0, frame_count=48, limits=Limits())
    assert info.video.frame_count == 48 and len(info.audio) == 1
    wrong = tmp_path / "wrong.mp4"
    with pytest.raises(MediaError, match="merged video has 48 frames, the source 50"):
        finish(prepared.paths, chunked_clip, wrong, rotation=0, frame_count=50, limits=Limits())
    assert not wrong.exists()
