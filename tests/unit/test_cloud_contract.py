"""The cloud contract's key builders and row helpers (the names every side shares)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from upscaler import cloud_contract as c


def test_keys_of_one_job_share_its_prefix():
    keys = [c.chunk_key("j1", 3), c.upscaled_key("j1", 3), c.request_key("j1", 3, 2)]
    assert keys == [
        "jobs/j1/chunks/chunk_00003.mp4",
        "jobs/j1/up/chunk_00003.mp4",
        "jobs/j1/requests/chunk_00003-2.json",
    ]
    assert all(k.startswith(c.job_prefix("j1")) for k in keys)
    assert c.upscaled_key("j1", 3).startswith(c.upscaled_prefix("j1"))
    assert c.output_key("j1", "clip", 4) == "outputs/j1/clip_x4.mp4"
    assert c.output_tmp_key(c.output_key("j1", "clip", 4)).startswith(c.OUTPUT_TMP_PREFIX)
    assert c.upload_key("j1", "a.mp4").startswith(c.UPLOAD_PREFIX)


def test_inference_ids_round_trip_and_refuse_strangers():
    assert c.parse_inference_id(c.inference_id("job-1", 4, 2)) == ("job-1", 4, 2)
    with pytest.raises(ValueError):
        c.parse_inference_id("../x:1:1")


def test_describe_row_is_plain_json():
    row = {
        "job_id": "j",
        "item": c.JOB_ITEM,
        "done": {Decimal(2), Decimal(0)},
        "scale": Decimal(2),
        "media": {"duration_s": Decimal("1.5")},
    }
    assert c.describe_row(row) == {
        "job_id": "j",
        "scale": 2,
        "media": {"duration_s": 1.5},
        "chunks_done": 2,
    }
    assert c.job_key("j") == {c.PARTITION_KEY: "j", c.SORT_KEY: c.JOB_ITEM}


def test_upload_metadata_round_trips_the_job_fields():
    fields = {"model": "fast", "scale": 2, "deinterlace": None, "square_pixels": True}
    metadata = c.upload_metadata(fields)
    assert metadata == {"model": "fast", "scale": "2", "square-pixels": "true"}
    back = c.metadata_fields(metadata)
    assert back["square_pixels"] == "true" and back["deinterlace"] is None


def test_context_chunks_stop_at_the_ends_of_the_video():
    before, after = c.context_chunks("j", 0, 3)
    assert before == [] and after == [c.chunk_key("j", 1), c.chunk_key("j", 2)]
    before, after = c.context_chunks("j", 4, 5)
    assert before == [c.chunk_key("j", 2), c.chunk_key("j", 3)] and after == []
