"""Handlers on moto with real video: split, dispatch, collect, merge and fetch."""

from __future__ import annotations

import http.server
import ipaddress
import json
import threading
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from lambdas import aws, collect, dispatch, fetch, jobs, merge, split
from lambdas.pipeline_local import CONTEXT
from lambdas.ssrf import UrlGuard
from tests.aws.conftest import CHUNKS, keys, queue_depth, upload
from upscaler.cloud_contract import fetching_row
from upscaler.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def s3_event(bucket: str, key: str, etag: str = "abc", version: str | None = None) -> dict:
    """An S3 ObjectCreated notification as S3 sends it (the key URL-encoded), in the event
    message structure of version 2.1 that AWS documents:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
    (`versionId` is null unless the bucket is versioned)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-02T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "split",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key),
                "size": 1024,
                "eTag": etag,
                "versionId": version,
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }
    return {"Records": [record]}


def split_upload(pipeline, clip: Path, key: str) -> str:
    upload(pipeline, clip, key)
    answer = split.handler(s3_event(pipeline.env["INPUT_BUCKET"], key), CONTEXT)
    return answer["job_ids"][0]


def test_split_decodes_the_key_and_enqueues_one_message_per_chunk(pipeline, aws_clip):
    key = "uploads/job-space/my holiday clip+1.mp4"
    upload(pipeline, aws_clip, key)
    assert pipeline.drain_uploads(split.handler) == 1  # moto's own notification
    job = jobs.describe("job-space")
    assert job["status"] == jobs.RUNNING and job["chunk_count"] == CHUNKS
    assert job["source"].endswith("my holiday clip+1.mp4") and job["name"] == "my_holiday_clip_1"
    assert job["media"]["frame_count"] == 48 and job["media"]["audio_streams"] == 1
    work = pipeline.env["WORK_BUCKET"]
    assert keys(work) == [f"jobs/job-space/chunks/chunk_{i:05d}.mp4" for i in range(CHUNKS)]
    messages = [json.loads(r["body"]) for r in pipeline.receive("work")]  # 10 at most
    assert sorted(m["index"] for m in messages) == list(range(CHUNKS))
    first = min(messages, key=lambda m: m["index"])
    assert first["chunk"] == f"s3://{work}/jobs/job-space/chunks/chunk_00000.mp4"
    assert first["output"] == f"s3://{work}/jobs/job-space/up/chunk_00000.mp4"
    assert (first["model"], first["scale"], first["attempt"]) == ("bicubic", 2, 1)


def test_split_refuses_bad_input_with_a_reason(pipeline, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    job_id = split_upload(pipeline, bad, "uploads/bad-job/notes.mp4")
    job = jobs.describe(job_id)
    assert job["status"] == jobs.FAILED
    assert "notes.mp4: not a supported video file" in job["reason"]
    assert "/tmp" not in job["reason"]
    assert queue_depth(pipeline, "work") == 0


def test_split_refuses_an_oversized_object_before_downloading_it(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("UPSCALER_MAX_INPUT_BYTES", "1000")
    downloads = []
    monkeypatch.setattr(split.aws, "download", lambda *a: downloads.append(a))
    job_id = split_upload(pipeline, aws_clip, "uploads/big-job/clip.mp4")
    job = jobs.describe(job_id)
    assert job["status"] == jobs.FAILED and "over the limit of 1000" in job["reason"]
    assert downloads == [] and queue_depth(pipeline, "work") == 0


def test_split_refuses_bad_settings(pipeline, aws_clip):
    upload(pipeline, aws_clip, "uploads/bad-scale/clip.mp4", scale="7")
    split.handler(s3_event(pipeline.env["INPUT_BUCKET"], "uploads/bad-scale/clip.mp4"), CONTEXT)
    job = jobs.describe("bad-scale")
    assert job["status"] == jobs.FAILED and "scale must be one of" in job["reason"]


SERVED = '{"esrgan-lite": [4], "fast": [2, 4], "bicubic": [2]}'


def test_split_refuses_a_model_the_endpoint_does_not_serve(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("SERVED_MODELS", SERVED)
    key = "uploads/unserved/clip.mp4"
    upload(pipeline, aws_clip, key, model="compact", scale="2")
    split.handler(s3_event(pipeline.env["INPUT_BUCKET"], key), CONTEXT)
    job = jobs.describe("unserved")
    assert job["status"] == jobs.FAILED
    assert job["reason"] == (
        "compact x2 is not served by this endpoint; it serves bicubic x2, esrgan-lite x4, "
        "fast x2/x4"
    )
    assert keys(pipeline.env["WORK_BUCKET"]) == [] and queue_depth(pipeline, "work") == 0


def test_a_plain_upload_gets_the_default_model_and_scale(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("SERVED_MODELS", SERVED)
    monkeypatch.setenv("DEFAULT_SCALE", "2")  # DEFAULT_MODEL is bicubic (conftest)
    job_id = split_upload(pipeline, aws_clip, "uploads/plain/clip.mp4")
    job = jobs.describe(job_id)
    assert (job["status"], job["model"], job["scale"]) == (jobs.RUNNING, "bicubic", 2)
    monkeypatch.setenv("DEFAULT_SCALE", "4")  # the deployment's default must be served too
    job_id = split_upload(pipeline, aws_clip, "uploads/plain-x4/clip.mp4")
    assert "bicubic x4 is not served" in jobs.describe(job_id)["reason"]


def test_a_malformed_served_models_value_is_a_deployment_error(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("SERVED_MODELS", '{"fast": "2"}')
    upload(pipeline, aws_clip, "uploads/misdeployed/clip.mp4")
    event = s3_event(pipeline.env["INPUT_BUCKET"], "uploads/misdeployed/clip.mp4")
    with pytest.raises(RuntimeError, match="environment variable SERVED_MODELS: model 'fast'"):
        split.handler(event, CONTEXT)


def test_split_refuses_a_job_whose_merge_would_not_fit(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("MERGE_SCRATCH_MIB", "0")  # any upload is over it
    downloads = []
    monkeypatch.setattr(split.aws, "download", lambda *a: downloads.append(a))
    job_id = split_upload(pipeline, aws_clip, "uploads/no-scratch/clip.mp4")
    job = jobs.describe(job_id)
    assert job["status"] == jobs.FAILED
    assert "merge would need about" in job["reason"] and "limit of 0 MiB" in job["reason"]
    assert downloads == [] and queue_depth(pipeline, "work") == 0


def test_split_refuses_chunks_longer_than_the_invocation_limit(pipeline, aws_clip, monkeypatch):
    monkeypatch.setenv("INSTANCE_TYPE", "ml.m5.xlarge")
    monkeypatch.setenv("INVOCATION_TIMEOUT_S", "2")
    key = "uploads/too-slow/clip.mp4"
    upload(pipeline, aws_clip, key, model="esrgan-lite", scale="4")
    split.handler(s3_event(pipeline.env["INPUT_BUCKET"], key), CONTEXT)
    job = jobs.describe("too-slow")
    assert job["status"] == jobs.FAILED
    assert "over the endpoint's async invocation limit of 2 s" in job["reason"]
    assert "chunk_seconds context parameter" in job["reason"]
    assert keys(pipeline.env["WORK_BUCKET"]) == [] and queue_depth(pipeline, "work") == 0


def test_duplicate_s3_event_is_idempotent(pipeline, aws_clip):
    key = "incoming/clip.mp4"  # not under uploads/: the job id is a hash of the object
    upload(pipeline, aws_clip, key)
    event = s3_event(pipeline.env["INPUT_BUCKET"], key)
    first = split.handler(event, CONTEXT)["job_ids"]
    assert split.handler(event, CONTEXT)["job_ids"] == first
    assert jobs.describe(first[0])["status"] == jobs.RUNNING
    assert queue_depth(pipeline, "work") == CHUNKS


def _results(pipeline) -> list[dict]:
    records = []
    while batch := pipeline.receive("results"):
        records += batch
        for record in batch:
            pipeline._delete("results", record)
    return records


def test_duplicate_and_out_of_order_results_merge_once(pipeline, aws_clip, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    job_id = split_upload(pipeline, aws_clip, "uploads/dupes/clip.mp4")
    pipeline.drain("work", dispatch.handler)
    chunk = jobs.get_chunk(job_id, 3)
    assert chunk["status"] == jobs.DISPATCHED and chunk["inference_id"] == f"{job_id}:3:1"
    assert endpoint.run(reverse=True) == CHUNKS  # completions arrive newest first
    records = _results(pipeline)
    assert len(records) == CHUNKS
    for batch in (records[:2], records[::-1], records):  # and again, and again
        collect.handler({"Records": batch}, CONTEXT)
    job = jobs.describe(job_id)
    assert job["status"] == jobs.MERGING and job["chunks_done"] == CHUNKS
    assert queue_depth(pipeline, "merge") == 1


@pytest.mark.parametrize(
    ("error", "attempts", "words"),
    [
        (RuntimeError("GPU fell over"), 2, "server error (500)"),
        ("bad-request", 1, "client error (400)"),
    ],
)
def test_failed_chunk_is_retried_then_fails_the_job(
    pipeline, aws_clip, bicubic_models, monkeypatch, error, attempts, words
):
    monkeypatch.setenv("MAX_CHUNK_ATTEMPTS", "2")
    endpoint = pipeline.endpoint(bicubic_models)
    if error == "bad-request":
        error = endpoint.inference.BadRequest("the chunk is not a video")
    answer = endpoint._answer

    def flaky(call):
        if call["InferenceId"].split(":")[1] == "2":
            raise error
        return answer(call)

    monkeypatch.setattr(endpoint, "_answer", flaky)
    job_id = split_upload(pipeline, aws_clip, "uploads/flaky/clip.mp4")
    for _ in range(attempts):
        pipeline.drain("work", dispatch.handler)
        endpoint.run()
        records = _results(pipeline)
        collect.handler({"Records": records + records}, CONTEXT)  # each report twice
    job = jobs.describe(job_id)
    assert job["status"] == jobs.FAILED, job
    assert job["reason"].startswith(f"chunk 2 failed (attempt {attempts}):")
    assert words in job["reason"]
    assert jobs.get_chunk(job_id, 2)["attempt"] == attempts + 1
    assert queue_depth(pipeline, "work") == 0 and queue_depth(pipeline, "merge") == 0


def test_merge_publishes_atomically_and_cleans_up(pipeline, aws_clip, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    job_id = split_upload(pipeline, aws_clip, "uploads/merged/clip.mp4")
    pipeline.drain("work", dispatch.handler)
    endpoint.run()
    pipeline.drain("results", collect.handler)
    record = pipeline.receive("merge")
    puts = []
    copy = aws.client("s3").copy

    def watch(source, bucket, key):
        puts.append((source["Key"], key, keys(bucket, "outputs/")))
        copy(source, bucket, key)

    aws.client("s3").copy = watch
    merge.handler({"Records": record}, CONTEXT)
    merge.handler({"Records": record}, CONTEXT)  # redelivered: nothing changes
    job = jobs.describe(job_id)
    final = f"outputs/{job_id}/clip_x2.mp4"
    assert job["status"] == jobs.DONE and job["output"].endswith(final)
    assert puts == [(f"tmp/{final}", final, [])]  # the final key appears only by the copy
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == [final]
    assert keys(pipeline.env["WORK_BUCKET"], "jobs/") == []
    assert job["output_bytes"] > 0


def test_merge_with_a_missing_chunk_fails_and_writes_nothing(pipeline, aws_clip, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    job_id = split_upload(pipeline, aws_clip, "uploads/holes/clip.mp4")
    pipeline.drain("work", dispatch.handler)
    endpoint.run()
    pipeline.drain("results", collect.handler)
    work = pipeline.env["WORK_BUCKET"]
    aws.client("s3").delete_object(Bucket=work, Key=f"jobs/{job_id}/up/chunk_00004.mp4")
    pipeline.drain("merge", merge.handler)
    job = jobs.describe(job_id)
    assert job["status"] == jobs.FAILED and "1 upscaled chunk(s) are missing" in job["reason"]
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == []


PAGE = b'<html><head><title>Clip</title></head><body><video src="/clip.mp4"></video></body></html>'


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def web(aws_clip):
    """A loopback web server: /clip.mp4, /page.html (a video tag), /hop (-> metadata)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/hop":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
                return
            body, kind = aws_clip.read_bytes(), "video/mp4"
            if self.path == "/page.html":
                body, kind = PAGE, "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_refuses_loopback_by_default(pipeline, web):
    answer = fetch.handler({"url": f"{web}/clip.mp4", "job_id": "fetch-no"}, CONTEXT)
    assert answer["status"] == jobs.FAILED and "loopback" in answer["reason"]
    assert jobs.describe("fetch-no")["status"] == jobs.FAILED
    assert keys(pipeline.env["INPUT_BUCKET"]) == []


def test_fetch_downloads_when_loopback_is_allowed(pipeline, web, monkeypatch):
    monkeypatch.setattr(fetch, "GUARD", UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),)))
    event = {"url": f"{web}/clip.mp4", "job_id": "fetch-ok", "scale": 2}
    answer = fetch.handler(event, CONTEXT)
    assert answer["status"] == "UPLOADED", answer
    assert keys(pipeline.env["INPUT_BUCKET"]) == ["uploads/fetch-ok/clip.mp4"]
    refused = fetch.handler({"url": f"{web}/hop", "job_id": "fetch-hop"}, CONTEXT)
    assert "metadata" in refused["reason"]
    monkeypatch.setenv("FETCH_MAX_BYTES", "1000")
    small = fetch.handler({"url": f"{web}/clip.mp4", "job_id": "fetch-big"}, CONTEXT)
    assert "over the limit of 1000" in small["reason"]


def test_fetch_finds_the_video_of_a_page_with_yt_dlp(pipeline, web, monkeypatch):
    monkeypatch.setattr(fetch, "GUARD", UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),)))
    answer = fetch.handler({"url": f"{web}/page.html", "job_id": "fetch-page"}, CONTEXT)
    assert answer["status"] == "UPLOADED", answer
    assert keys(pipeline.env["INPUT_BUCKET"], "uploads/fetch-page/")


def test_yt_dlp_own_requests_go_through_the_guard(pipeline, web, monkeypatch):
    with pytest.raises(InputError, match=r"no downloadable video found.*loopback"):
        fetch.find_media(f"{web}/page.html")  # the default guard: yt-dlp may not read it
    monkeypatch.setattr(fetch, "GUARD", UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),)))
    media_url, _, _ = fetch.find_media(f"{web}/page.html")
    assert media_url == f"{web}/clip.mp4"
    with pytest.raises(InputError, match="metadata"):  # a redirect yt-dlp follows is checked
        fetch.find_media(f"{web}/hop")


def test_an_asynchronous_fetch_moves_its_job_from_fetching(pipeline, web, aws_clip, monkeypatch):
    monkeypatch.setattr(fetch, "GUARD", UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),)))
    table = aws.table(pipeline.env["JOB_TABLE"])
    table.put_item(Item=fetching_row("fetch-async", f"{web}/clip.mp4", jobs.now()))
    event = {"url": f"{web}/clip.mp4", "job_id": "fetch-async", "model": "bicubic", "scale": 2}
    event |= {"crf": 0, "deinterlace": "off", "square_pixels": True}  # as `submit URL` sends
    answer = fetch.handler(event, CONTEXT)
    row = jobs.describe("fetch-async")
    assert answer["status"] == "UPLOADED" and row["status"] == jobs.FETCHING
    assert row["source"] == answer["source"]  # the one object this job will own
    assert row["fetched_bytes"] == aws_clip.stat().st_size
    assert fetch.handler(event, CONTEXT)["status"] == jobs.FETCHING  # no second download
    assert pipeline.drain_uploads(split.handler) == 1
    split_row = jobs.describe("fetch-async")
    assert split_row["status"] == jobs.RUNNING
    picked = ("crf", "deinterlace", "square_pixels")
    assert [split_row[k] for k in picked] == [0, "off", True]  # the submission's, via metadata
    assert fetch.handler(event, CONTEXT)["status"] == jobs.RUNNING  # redelivery: ignored


def test_a_failed_fetch_ends_failed_with_a_reason(pipeline, web, monkeypatch):
    monkeypatch.setattr(fetch, "GUARD", UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),)))
    table = aws.table(pipeline.env["JOB_TABLE"])
    table.put_item(Item=fetching_row("fetch-bad", f"{web}/clip.mp4", jobs.now()))
    monkeypatch.setattr(fetch, "probe", lambda *a: 1 / 0)  # an unexpected crash mid-fetch
    answer = fetch.handler({"url": f"{web}/clip.mp4", "job_id": "fetch-bad"}, CONTEXT)
    row = jobs.describe("fetch-bad")
    assert answer["status"] == row["status"] == jobs.FAILED
    assert row["reason"] == "fetch failed: ZeroDivisionError: division by zero"
    answer = fetch.handler({"url": f"{web}/clip.mp4", "job_id": "fetch-x", "scale": 5}, CONTEXT)
    assert jobs.describe("fetch-x")["reason"] == answer["reason"]
    assert "scale must be one of" in answer["reason"]


def test_throttled_dispatch_is_reported_for_redelivery(pipeline, aws_clip, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    split_upload(pipeline, aws_clip, "uploads/throttled/clip.mp4")
    calls = []

    def throttled(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            error = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
            raise ClientError(error, "InvokeEndpointAsync")
        return endpoint.invoke_endpoint_async(**kwargs)

    aws.override_client("sagemaker-runtime", SimpleNamespace(invoke_endpoint_async=throttled))
    records = pipeline.receive("work")
    answer = dispatch.handler({"Records": records}, CONTEXT)
    assert answer["batchItemFailures"] == [{"itemIdentifier": records[1]["messageId"]}]
    assert calls[0]["InferenceId"].endswith(":1") and calls[0]["ContentType"] == "application/json"
    assert calls[0]["InputLocation"].startswith(f"s3://{pipeline.env['WORK_BUCKET']}/jobs/")
    assert len(endpoint.pending) == CHUNKS - 1


def test_sweep_fails_only_jobs_that_stopped_making_progress(pipeline, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from lambdas import sweep

    table = aws.table(pipeline.env["JOB_TABLE"])
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat(timespec="milliseconds")
    fresh = datetime.now(UTC).isoformat(timespec="milliseconds")
    rows = {
        "stuck": ("RUNNING", old),
        "pending": ("PENDING", old),
        "busy": ("RUNNING", fresh),
        "done": ("DONE", old),
        "failed": ("FAILED", old),
    }
    for job_id, (status, updated) in rows.items():
        table.put_item(
            Item={"job_id": job_id, "item": "JOB", "status": status, "updated_at": updated}
        )
    table.put_item(
        Item={"job_id": "stuck", "item": "CHUNK#00000", "status": "DISPATCHED", "updated_at": old}
    )
    monkeypatch.setenv("STALE_AFTER_S", "3600")
    assert sorted(sweep.handler({}, CONTEXT)["failed"]) == ["pending", "stuck"]
    for job_id, status in (
        ("stuck", "FAILED"),
        ("pending", "FAILED"),
        ("busy", "RUNNING"),
        ("done", "DONE"),
    ):
        assert jobs.describe(job_id)["status"] == status
    assert "timed out: no progress for 1.0 h while RUNNING" in jobs.describe("stuck")["reason"]
    assert sweep.handler({}, CONTEXT)["failed"] == []  # idempotent


def test_a_warm_handler_never_logs_the_previous_invocations_keys(pipeline, monkeypatch):
    import io
    from datetime import UTC, datetime, timedelta

    from lambdas import sweep

    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat(timespec="milliseconds")
    aws.table(pipeline.env["JOB_TABLE"]).put_item(
        Item={"job_id": "stale", "item": "JOB", "status": "RUNNING", "updated_at": old}
    )
    monkeypatch.setenv("STALE_AFTER_S", "3600")
    sweep.logger.append_keys(job_id="an-earlier-job")  # left over in a warm container
    buf = io.StringIO()
    previous = sweep.logger.registered_handler.setStream(buf)
    try:
        assert sweep.handler({}, CONTEXT)["failed"] == ["stale"]
    finally:
        sweep.logger.registered_handler.setStream(previous)
    out = buf.getvalue()
    assert "failed stale jobs" in out
    assert "an-earlier-job" not in out
