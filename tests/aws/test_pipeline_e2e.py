"""End to end on moto: upload -> S3 notification -> split -> dispatch -> the real inference
handler with the real model -> SNS -> collect -> merge -> the output bucket."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from lambdas import aws, jobs
from lambdas.pipeline_local import endpoint_models, run_local
from tests.aws.conftest import e2e_model, keys, upload
from tests.clips import ClipSpec, frame_times_of, make_clip, packets
from upscaler.media.probe import probe


@pytest.fixture(scope="module")
def e2e_clip(clip_dir) -> Path:
    """64x48 with audio, 40 frames, a keyframe every 8: five chunks of 0.25 s."""
    spec = ClipSpec(width=64, height=48, frames=40, gop=8, rate=Fraction(30000, 1001))
    return make_clip(clip_dir / "e2e.mp4", spec)


def test_upload_to_output(pipeline, e2e_clip, tmp_path):
    model = e2e_model()
    endpoint = pipeline.endpoint(endpoint_models(model, 2))
    upload(pipeline, e2e_clip, "uploads/e2e-job/holiday clip.mp4", model=model, scale="2")
    pipeline.run(endpoint, reverse=True)  # chunks complete out of order
    job = jobs.describe("e2e-job")
    assert job["status"] == jobs.DONE, job
    assert (job["model"], job["chunk_count"], job["chunks_done"]) == (model, 5, 5)
    final = "outputs/e2e-job/holiday_clip_x2.mp4"
    assert job["output"] == f"s3://{pipeline.env['OUTPUT_BUCKET']}/{final}"
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == [final]
    assert keys(pipeline.env["WORK_BUCKET"], "jobs/") == []
    out = tmp_path / "out.mp4"
    aws.client("s3").download_file(pipeline.env["OUTPUT_BUCKET"], final, str(out))
    info = probe(out)
    assert (info.video.width, info.video.height, info.video.frame_count) == (128, 96, 40)
    assert frame_times_of(out) == frame_times_of(e2e_clip)
    assert packets(out, "audio") == packets(e2e_clip, "audio")
    assert info.video.colour == probe(e2e_clip).video.colour


def test_bad_upload_fails_with_a_reason_and_no_output(pipeline, tmp_path, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 2000)  # an MP4 header, then junk
    upload(pipeline, bad, "uploads/e2e-bad/clip.mp4")
    pipeline.run(endpoint)
    job = jobs.describe("e2e-bad")
    assert job["status"] == jobs.FAILED and job["reason"].startswith("clip.mp4:")
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == []


def test_run_local_engine_of_pipeline_local(e2e_clip, tmp_path):
    out = tmp_path / "local.mp4"
    job = run_local(e2e_clip, out, model="bicubic", scale=2, chunk_seconds=0.5)
    assert job["status"] == jobs.DONE and job["chunk_count"] == 3
    assert probe(out).video.frame_count == 40
