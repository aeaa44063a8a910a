"""Helpers to drive the moto pipeline like AWS does while faults are injected."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import Any

import av
from botocore.exceptions import ClientError

from lambdas import aws, jobs
from lambdas.pipeline_local import Pipeline, _steps

QUEUES = ("uploads", "work", "results", "merge")
#: Where a queue's failures end up; S3 -> split failures go to split's own async DLQ.
DLQS = {"uploads": "splitfailures-dlq"}


def drive(pipeline: Pipeline, endpoint: Any, rounds: int = 80, reverse: bool = False) -> int:
    """Run every handler until nothing moves. A handler that raises is what Lambda retries:
    the message it was given stays on its queue (S3 events: the async retry) and the next
    round sees it again. Returns how many rounds raised."""
    raised = 0
    for _ in range(rounds):
        try:
            if not _steps(pipeline, endpoint, reverse):
                return raised
        except Exception:
            raised += 1
    raise AssertionError(f"the pipeline still moves after {rounds} rounds")


def depth(pipeline: Pipeline, name: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queues[name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def dlq_depth(pipeline: Pipeline, name: str) -> int:
    url = pipeline.queues[DLQS.get(name, f"{name}-dlq")]
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def assert_settled(pipeline: Pipeline, job_id: str) -> dict[str, Any]:
    """The job ended (DONE, or FAILED with a reason) and nothing is left in flight."""
    job = jobs.describe(job_id)
    assert job is not None, f"job {job_id} has no row"
    assert job["status"] in (jobs.DONE, jobs.FAILED), f"job stuck: {job}"
    if job["status"] == jobs.FAILED:
        assert job.get("reason"), job
    for name in QUEUES:
        assert depth(pipeline, name) == 0, f"{name} queue not empty"
        assert dlq_depth(pipeline, name) == 0, f"{name} DLQ not empty"
    return job


def video_digest(path: Path) -> tuple[str, int]:
    """A hash of every decoded frame (planes and pts) and the frame count."""
    digest = hashlib.sha256()
    count = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest.update(str(frame.pts).encode())
            for plane in frame.to_ndarray(format="yuv420p"):
                digest.update(plane.tobytes())
            count += 1
    return digest.hexdigest(), count


def packet_payloads(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        streams = getattr(container.streams, kind)
        return [bytes(p) for p in container.demux(streams[0]) if p.size] if streams else []


class Throttled:
    """A proxy of the handlers' S3 client whose calls fail with SlowDown (503) at `rate`,
    as S3 answers when a prefix is hot and the SDK's own retries are spent."""

    METHODS = frozenset(
        {"get_object", "put_object", "head_object", "upload_file", "download_file", "copy",
         "delete_object", "delete_objects", "list_objects_v2"}
    )  # fmt: skip

    def __init__(self, real: Any, rate: float, seed: int) -> None:
        self._real, self._rate, self._rng = real, rate, random.Random(seed)
        self._lock = threading.Lock()
        self.thrown = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in self.METHODS:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                throttle = self._rng.random() < self._rate
                self.thrown += throttle
            if throttle:
                error = {
                    "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                }
                raise ClientError(error, name)
            return attr(*args, **kwargs)

        return call
