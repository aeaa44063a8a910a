"""Many concurrent jobs through the moto pipeline: N uploads, W threads acting as
concurrent Lambda invocations of every handler (shared by test_load.py and the benchmark)."""

from __future__ import annotations

import json
import resource
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from lambdas import aws, jobs
from lambdas.pipeline_local import (
    CONTEXT,
    REGION,
    LocalEndpoint,
    Pipeline,
    endpoint_models,
    environment,
)
from tests.clips import ClipSpec, make_clip
from upscaler.media.probe import probe


class LockedEndpoint(LocalEndpoint):
    """LocalEndpoint safe to call from many threads: one invocation list, answered by one
    worker at a time (like a one-instance endpoint; the inference handler builds its boto3
    client per request, which is not thread-safe to do concurrently)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, str]:
        with self._lock:
            return super().invoke_endpoint_async(**kwargs)

    def run(self, reverse: bool = False) -> int:
        with self._lock:
            return super().run(reverse)


@dataclass
class LoadResult:
    jobs: int
    workers: int
    done: int
    failed: int
    seconds: float
    frames: int
    peak_rss_mb: float
    rss_growth_mb: float

    @property
    def jobs_per_minute(self) -> float:
        return 60 * self.jobs / self.seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def _invoke(pipeline: Pipeline, name: str, handler: Any, records: list[dict]) -> None:
    """One Lambda invocation on an SQS batch: delete the successes, make the failures
    visible again at once (as SQS does when their visibility timeout ends)."""
    sqs, url = aws.client("sqs"), pipeline.queues[name]
    if name == "uploads":
        failed = set()
        for record in records:
            event = json.loads(record["body"])
            try:
                if "Records" in event:
                    handler(event, CONTEXT)
            except Exception:  # the S3 event's retry
                failed.add(record["messageId"])
    else:
        answer = handler({"Records": records}, CONTEXT) or {}
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
    for record in records:
        if record["messageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])


def _drive_concurrently(
    pipeline: Pipeline, endpoint: LocalEndpoint, ids: list[str], workers: int, until: float
) -> None:
    """Lambda's SQS pollers: one poller per queue hands batches of up to 10 messages to
    concurrent invocations (a thread pool of `workers`); messages in flight stay invisible."""
    from lambdas import collect, dispatch, merge, split

    sqs = aws.client("sqs")
    for url in pipeline.queues.values():
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "300"})
    handlers = {"uploads": split.handler, "work": dispatch.handler,
                "results": collect.handler, "merge": merge.handler}  # fmt: skip
    with ThreadPoolExecutor(workers) as pool:
        inflight: set[Future] = set()
        serving: Future | None = None  # at most one endpoint pass at a time
        while time.perf_counter() < until:
            for name, handler in handlers.items():
                while len(inflight) < 2 * workers and (records := pipeline.receive(name)):
                    inflight.add(pool.submit(_invoke, pipeline, name, handler, records))
            if serving is None or serving.done():
                serving = pool.submit(endpoint.run)
                inflight.add(serving)
            finished, inflight = wait(inflight, timeout=0.05, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()  # a harness error, not a handler error: fail loudly
            statuses = {(jobs.get_job(j) or {}).get("status") for j in ids}
            if inflight <= {serving} and statuses <= {jobs.DONE, jobs.FAILED}:
                serving.result()  # the last endpoint pass finds nothing left to serve
                return
        raise TimeoutError(f"jobs still running after the timeout: {sorted(map(str, statuses))}")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_clips(directory: Path, kinds: int = 3) -> list[tuple[Path, int, tuple[int, int]]]:
    """Short clips of a few sizes (so a job given the wrong chunks would be caught)."""
    clips = []
    for k in range(kinds):
        w, h, frames = 48 + 16 * k, 32 + 8 * k, 12 + 4 * k
        spec = ClipSpec(width=w, height=h, frames=frames, gop=4, rate=Fraction(25))
        clips.append((make_clip(directory / f"load{k}.mp4", spec), frames, (w, h)))
    return clips


def run_load(directory: Path, n_jobs: int, workers: int, timeout: float = 300) -> LoadResult:
    """Upload `n_jobs` clips at once and drive the pipeline with `workers` concurrent
    handler invocations until every job ends; check each output (frame count, size)."""
    from moto import mock_aws

    clips = make_clips(directory)
    models = endpoint_models("bicubic", 2)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with environment(**creds, AWS_DEFAULT_REGION=REGION), mock_aws():
        pipeline = Pipeline(prefix="load").create()
        with environment(**pipeline.env, CHUNK_SECONDS="0.15", DEFAULT_MODEL="bicubic"):
            root = f"s3://{pipeline.env['WORK_BUCKET']}"
            topics = pipeline.topics["success"], pipeline.topics["error"]
            endpoint = LockedEndpoint(models, root, *topics)
            aws.override_client("sagemaker-runtime", endpoint)
            bucket = pipeline.env["INPUT_BUCKET"]
            rss_before = _rss_mb()
            started = time.perf_counter()
            for i in range(n_jobs):
                path = clips[i % len(clips)][0]
                aws.client("s3").upload_file(str(path), bucket, f"uploads/load-{i:03d}/c.mp4")
            ids = [f"load-{i:03d}" for i in range(n_jobs)]
            _drive_concurrently(pipeline, endpoint, ids, workers, started + timeout)
            seconds = time.perf_counter() - started
            done = failed = frames = 0
            for i, job_id in enumerate(ids):
                job = jobs.describe(job_id) or {}
                if job.get("status") == jobs.DONE:
                    _, count, (w, h) = clips[i % len(clips)]
                    out = directory / f"{job_id}.mp4"
                    aws.download(job["output"], out)
                    info = probe(out)
                    assert (info.video.frame_count, info.video.width, info.video.height) == (
                        count, 2 * w, 2 * h), f"{job_id}: wrong output"  # fmt: skip
                    frames += count
                    done += 1
                    out.unlink()
                elif job.get("status") == jobs.FAILED:
                    failed += 1
        aws.reset()
    peak = _rss_mb()
    return LoadResult(n_jobs, workers, done, failed, seconds, frames, round(peak, 1),
                      round(peak - rss_before, 1))  # fmt: skip
