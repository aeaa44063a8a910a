"""Fault injection on the moto pipeline. Each scenario must end with the job DONE (after
retries) or FAILED with a reason, no message left in flight (queues and DLQs empty), a single
final object, one merge, and an output identical (decoded frames, audio packets) to the
fault-free run."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from lambdas import aws, collect, dispatch, jobs, merge
from lambdas.pipeline_local import CONTEXT
from tests.clips import ClipSpec, make_clip
from tests.reliability.faults import (
    Throttled,
    assert_settled,
    drive,
    packet_payloads,
    video_digest,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CHUNKS = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """64x48 with audio, 24 frames, a keyframe every 4: six chunks at CHUNK_SECONDS 0.15."""
    spec = ClipSpec(width=64, height=48, frames=24, gop=4, rate=Fraction(25))
    return make_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", spec)


@pytest.fixture
def env(pipeline, monkeypatch, bicubic_endpoint_models):
    monkeypatch.setenv("CHUNK_SECONDS", "0.15")
    monkeypatch.setenv("CRF", "0")  # lossless: libx264's lossy output varies between runs
    return pipeline, pipeline.endpoint(bicubic_endpoint_models)


def start(pipeline, clip: Path, job_id: str) -> None:
    aws.client("s3").upload_file(str(clip), pipeline.env["INPUT_BUCKET"], f"uploads/{job_id}/c.mp4")


def output_of(pipeline, job: dict, tmp_path: Path) -> Path:
    out_bucket = pipeline.env["OUTPUT_BUCKET"]
    assert sorted(aws.list_sizes(out_bucket, "")) == [f"outputs/{job['job_id']}/c_x2.mp4"]
    assert aws.list_sizes(pipeline.env["WORK_BUCKET"], "jobs/") == {}
    path = tmp_path / f"{job['job_id']}.mp4"
    aws.download(job["output"], path)
    return path


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory):
    """The fault-free run's output: (frame digest, frame count, audio packets)."""
    from lambdas.pipeline_local import run_local

    out = tmp_path_factory.mktemp("ref") / "ref.mp4"
    job = run_local(clip, out, model="bicubic", scale=2, chunk_seconds=0.15, crf=0)
    assert job["status"] == jobs.DONE and job["chunk_count"] == CHUNKS
    return video_digest(out), packet_payloads(out, "audio")


def assert_identical(path: Path, reference) -> None:
    (digest, frames), audio = reference
    assert video_digest(path) == (digest, frames)
    assert packet_payloads(path, "audio") == audio


@pytest.fixture
def merges(monkeypatch):
    """How many times a merge actually ran (downloaded chunks and muxed)."""
    calls = []
    real = merge._merge_to_file

    def counted(job, tmp):
        calls.append(job["job_id"])
        return real(job, tmp)

    monkeypatch.setattr(merge, "_merge_to_file", counted)
    return calls


def test_endpoint_errors_on_some_chunks_are_retried(env, clip, reference, merges, tmp_path,
                                                    monkeypatch):  # fmt: skip
    """A third of the first attempts fail with a 500: retried, then DONE, same output."""
    pipeline, endpoint = env
    answer, failed = endpoint._answer, []

    def flaky(call):
        _, index, attempt = call["InferenceId"].split(":")
        if attempt == "1" and int(index) % 3 == 1:
            failed.append(index)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return answer(call)

    monkeypatch.setattr(endpoint, "_answer", flaky)
    start(pipeline, clip, "flaky")
    drive(pipeline, endpoint)
    job = assert_settled(pipeline, "flaky")
    assert job["status"] == jobs.DONE and sorted(failed) == ["1", "4"]
    assert jobs.get_chunk("flaky", 1)["done_attempt"] == 2
    assert merges == ["flaky"]
    assert_identical(output_of(pipeline, job, tmp_path), reference)


def test_endpoint_failing_beyond_max_attempts_fails_the_job(env, clip, merges, monkeypatch):
    pipeline, endpoint = env
    monkeypatch.setenv("MAX_CHUNK_ATTEMPTS", "3")
    answer, attempts = endpoint._answer, []

    def broken(call):
        if call["InferenceId"].split(":")[1] == "3":
            attempts.append(call["InferenceId"])
            raise RuntimeError("worker died")
        return answer(call)

    monkeypatch.setattr(endpoint, "_answer", broken)
    start(pipeline, clip, "broken")
    drive(pipeline, endpoint)
    job = assert_settled(pipeline, "broken")
    assert job["status"] == jobs.FAILED
    assert job["reason"].startswith("chunk 3 failed (attempt 3):")
    assert "worker died" in job["reason"]
    assert attempts == ["broken:3:1", "broken:3:2", "broken:3:3"]
    assert merges == [] and aws.list_sizes(pipeline.env["OUTPUT_BUCKET"], "") == {}


def test_lambda_raising_mid_batch_is_redelivered(env, clip, reference, merges, tmp_path,
                                                 monkeypatch):  # fmt: skip
    """dispatch and collect each crash on one record of a batch (an unexpected exception,
    not a handled error): the partial batch response names that record only, SQS redelivers
    it, and the job completes."""
    pipeline, endpoint = env
    crashed = {"dispatch": 0, "collect": 0}
    real_dispatch, real_collect = dispatch.dispatch, collect.succeeded

    def crash_dispatch(item):
        if item.index == 2 and not crashed["dispatch"]:
            crashed["dispatch"] += 1
            raise ConnectionResetError("Lambda sandbox lost its network")
        return real_dispatch(item)

    def crash_collect(job_id, index, attempt, location):
        if index == 4 and not crashed["collect"]:
            crashed["collect"] += 1
            raise MemoryError("Runtime exited with error: signal: killed")
        return real_collect(job_id, index, attempt, location)

    monkeypatch.setattr(dispatch, "dispatch", crash_dispatch)
    monkeypatch.setattr(collect, "succeeded", crash_collect)
    answers = []
    real_handler = collect.handler

    def recording(event, context):
        answer = real_handler(event, context)
        answers.append((len(event["Records"]), answer["batchItemFailures"]))
        return answer

    monkeypatch.setattr(collect, "handler", recording)
    start(pipeline, clip, "midbatch")
    drive(pipeline, endpoint)
    job = assert_settled(pipeline, "midbatch")
    assert job["status"] == jobs.DONE and crashed == {"dispatch": 1, "collect": 1}
    partial = [(n, f) for n, f in answers if f]
    assert len(partial) == 1 and partial[0][0] > 1 and len(partial[0][1]) == 1
    assert merges == ["midbatch"]
    assert_identical(output_of(pipeline, job, tmp_path), reference)


def test_split_crash_after_uploading_chunks_resumes(env, clip, reference, tmp_path,
                                                    monkeypatch):  # fmt: skip
    """The split Lambda dies after the chunks are uploaded but before the work messages:
    the S3 event's retry re-splits the same job and it completes once."""
    pipeline, endpoint = env
    real_send_all, calls = aws.send_all, []

    def dies(url, bodies):
        calls.append(len(bodies))
        if len(calls) == 1:
            raise TimeoutError("Task timed out after 900.00 seconds")
        return real_send_all(url, bodies)

    monkeypatch.setattr(aws, "send_all", dies)
    start(pipeline, clip, "resplit")
    assert drive(pipeline, endpoint) == 1  # one round raised, and the retry went through
    job = assert_settled(pipeline, "resplit")
    assert job["status"] == jobs.DONE and calls == [CHUNKS, CHUNKS]
    assert_identical(output_of(pipeline, job, tmp_path), reference)


def test_duplicated_and_reordered_messages(env, clip, reference, merges, tmp_path, monkeypatch):
    """At-least-once delivery: every message is sent twice, each batch arrives shuffled, and
    the endpoint answers newest first."""
    pipeline, endpoint = env
    real_send, real_send_all, real_receive = aws.send, aws.send_all, pipeline.receive
    rng = random.Random(3)

    monkeypatch.setattr(aws, "send", lambda url, body: [real_send(url, body) for _ in "ab"])
    monkeypatch.setattr(aws, "send_all", lambda url, bodies: real_send_all(url, bodies + bodies))

    def shuffled(name):
        records = real_receive(name)
        rng.shuffle(records)
        return records

    monkeypatch.setattr(pipeline, "receive", shuffled)
    start(pipeline, clip, "dupes")
    drive(pipeline, endpoint, reverse=True)
    job = assert_settled(pipeline, "dupes")
    assert job["status"] == jobs.DONE and job["chunks_done"] == CHUNKS
    assert merges == ["dupes"]  # the duplicate merge message found the job DONE
    assert_identical(output_of(pipeline, job, tmp_path), reference)


@pytest.mark.parametrize("dies_at", ["copy", "delete_object"])
def test_merge_dying_after_the_temporary_key(env, clip, reference, merges, tmp_path, dies_at,
                                             monkeypatch):  # fmt: skip
    """The merge Lambda is killed after uploading `tmp/<key>`: before the copy to the final
    key, or after it but before deleting the temporary key. The redelivered message
    completes the job with one final object and no temporary key left behind."""
    pipeline, endpoint = env
    s3 = aws.client("s3")
    real, calls = getattr(s3, dies_at), []

    def dies(*args, **kwargs):
        key = kwargs.get("Key") or (args[2] if len(args) > 2 else "")
        if dies_at == "copy" or str(key).startswith("tmp/"):
            calls.append(key)
            if len(calls) == 1:
                raise TimeoutError("Task timed out")
        return real(*args, **kwargs)

    monkeypatch.setattr(s3, dies_at, dies)
    start(pipeline, clip, "mergedies")
    drive(pipeline, endpoint)
    job = assert_settled(pipeline, "mergedies")
    assert job["status"] == jobs.DONE and calls
    assert merges == ["mergedies"] * (2 if dies_at == "copy" else 1)
    assert_identical(output_of(pipeline, job, tmp_path), reference)


RATE = 0.1


@pytest.mark.parametrize("seed", [1, 2])
def test_s3_throttling_everywhere(env, clip, reference, merges, tmp_path, seed, monkeypatch):
    """A tenth of the handlers' S3 calls answer SlowDown (as after the SDK's own retries):
    failed records are redelivered, the split is retried, and the job still completes with
    one output. (A message failing maxReceiveCount=3 times in a row would land in its DLQ,
    which assert_settled also checks.)"""
    pipeline, endpoint = env
    start(pipeline, clip, f"slow{seed}")
    throttled = Throttled(aws.client("s3"), RATE, seed)
    real_run = endpoint.run

    def endpoint_run(reverse=False):  # SageMaker's own S3 traffic is not the handlers'
        aws.override_client("s3", None)
        try:
            return real_run(reverse)
        finally:
            aws.override_client("s3", throttled)

    monkeypatch.setattr(endpoint, "run", endpoint_run)
    aws.override_client("s3", throttled)
    drive(pipeline, endpoint, rounds=150)
    aws.override_client("s3", None)
    job = assert_settled(pipeline, f"slow{seed}")
    assert throttled.thrown > 0
    assert job["status"] == jobs.DONE, job
    assert len(merges) >= 1  # a throttled publish re-merges; the output is still single
    assert_identical(output_of(pipeline, job, tmp_path), reference)


def test_reports_for_unknown_or_foreign_inferences_are_ignored(env):
    pipeline, _ = env
    for note in ({"inferenceId": "../../etc:1:1", "invocationStatus": "Completed"},
                 {"inferenceId": "nojob:0:1", "invocationStatus": "Failed"},
                 {"invocationStatus": "Completed"}):  # fmt: skip
        collect.collect(note)
    body = json.dumps({"job_id": "nojob"})
    merge.handler({"Records": [_sqs(body)]}, CONTEXT)
    assert aws.list_sizes(pipeline.env["OUTPUT_BUCKET"], "") == {}


def _sqs(body: str) -> dict:
    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    return {"messageId": "m1", "receiptHandle": "r", "body": body, "attributes": {},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": arn, "awsRegion": "us-east-1"}  # fmt: skip
