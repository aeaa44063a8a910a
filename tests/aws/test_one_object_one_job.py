"""One object, one job: every upload is its own job, even beside others under one prefix.

Events are S3 ObjectCreated notifications in the documented message structure (see
`s3_event` in test_handlers.py).
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from lambdas import aws, collect, dispatch, jobs, merge, split
from lambdas.pipeline_local import CONTEXT
from tests.aws.conftest import CHUNKS, keys, queue_depth, upload
from tests.aws.test_handlers import s3_event

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _event(pipeline, key: str) -> dict:
    bucket = pipeline.env["INPUT_BUCKET"]
    return s3_event(bucket, key, aws.head(bucket, key)["ETag"].strip('"'))


def test_two_files_under_one_prefix_are_two_jobs_with_their_own_chunks(
    pipeline, aws_clip, basic_clip
):
    # Both land before either is split. (Split runs one after the other here: moto does not
    # serialize concurrent conditional writes the way DynamoDB does, on which `jobs.own`
    # relies when two splits race for one prefix.)
    upload(pipeline, aws_clip, "uploads/shared/a.mp4")
    upload(pipeline, basic_clip, "uploads/shared/b.mp4")
    events = [_event(pipeline, "uploads/shared/a.mp4"), _event(pipeline, "uploads/shared/b.mp4")]
    first, second = (split.handler(e, CONTEXT)["job_ids"][0] for e in events)
    assert first == "shared" and second != first
    rows = {job_id: jobs.describe(job_id) for job_id in (first, second)}
    assert {r["source"].rsplit("/", 1)[1] for r in rows.values()} == {"a.mp4", "b.mp4"}
    assert all(r["status"] == jobs.RUNNING for r in rows.values()), rows
    by_source = {r["source"].rsplit("/", 1)[1]: r for r in rows.values()}
    assert by_source["a.mp4"]["chunk_count"] == CHUNKS
    assert by_source["a.mp4"]["media"]["frame_count"] == 48
    assert by_source["b.mp4"]["media"]["frame_count"] == 12  # not the other file's chunks
    work = pipeline.env["WORK_BUCKET"]
    for job_id, row in rows.items():
        chunk_keys = keys(work, f"jobs/{job_id}/chunks/")
        assert len(chunk_keys) == row["chunk_count"]
    total = sum(r["chunk_count"] for r in rows.values())
    assert queue_depth(pipeline, "work") == total
    # A redelivered event finds its own job again and changes nothing.
    assert split.handler(events[1], CONTEXT)["job_ids"] == [second]
    assert queue_depth(pipeline, "work") == total


def test_a_new_version_of_one_key_is_a_new_job(pipeline, aws_clip, basic_clip):
    key = "uploads/again/clip.mp4"
    upload(pipeline, aws_clip, key)
    (first,) = split.handler(_event(pipeline, key), CONTEXT)["job_ids"]
    upload(pipeline, basic_clip, key)  # overwritten with other content: another ETag
    (second,) = split.handler(_event(pipeline, key), CONTEXT)["job_ids"]
    assert first == "again" and second != first
    assert jobs.describe(second)["media"]["frame_count"] == 12
    assert jobs.describe(first)["media"]["frame_count"] == 48


def test_a_versioned_upload_is_split_and_merged_from_its_own_version(
    pipeline, aws_clip, basic_clip, bicubic_models, tmp_path
):
    bucket = pipeline.env["INPUT_BUCKET"]
    s3 = aws.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "uploads/versioned/clip.mp4"
    upload(pipeline, aws_clip, key)
    first = aws.head(bucket, key)
    upload(pipeline, basic_clip, key)  # overwritten before the first event is handled
    second = aws.head(bucket, key)
    event = s3_event(bucket, key, first["ETag"].strip('"'), first["VersionId"])
    (job_id,) = split.handler(event, CONTEXT)["job_ids"]
    job = jobs.describe(job_id)
    assert job_id == "versioned" and job["source_version"] == first["VersionId"]
    assert job["media"]["frame_count"] == 48  # the first version, not the latest
    event = s3_event(bucket, key, second["ETag"].strip('"'), second["VersionId"])
    (other,) = split.handler(event, CONTEXT)["job_ids"]
    assert other != job_id and jobs.describe(other)["media"]["frame_count"] == 12
    # The merge of the first job muxes the first version's audio and frames.
    endpoint = pipeline.endpoint(bicubic_models)
    pipeline.drain("work", dispatch.handler)
    endpoint.run()
    pipeline.drain("results", collect.handler)
    pipeline.drain("merge", merge.handler)
    done = jobs.describe(job_id)
    assert done["status"] == jobs.DONE and jobs.describe(other)["status"] == jobs.DONE
    output = aws.download(done["output"], tmp_path / "out.mp4")
    assert _audio(output) == _audio(aws_clip) != _audio(basic_clip)


def _audio(path: Path) -> bytes:
    """The first audio stream's packets, bit for bit (merge stream-copies them)."""
    with av.open(str(path)) as container:
        return b"".join(bytes(p) for p in container.demux(container.streams.audio[0]) if p.size)
