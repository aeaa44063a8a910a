"""Fixtures for the pipeline tests: a moto account with the pipeline's resources."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from moto import mock_aws

from lambdas import aws
from lambdas.pipeline_local import Pipeline, endpoint_models, load_inference
from tests.clips import ClipSpec, make_clip
from upscaler.models.registry import shipped_weights_path

#: 48 frames, a keyframe every 8: with CHUNK_SECONDS 0.25 the pipeline cuts 6 chunks.
CHUNK_SECONDS = "0.25"
CHUNKS = 6


@pytest.fixture(scope="session")
def aws_clip(clip_dir) -> Path:
    spec = ClipSpec(frames=48, gop=8, rate=Fraction(30000, 1001), options={"bf": "2"})
    return make_clip(clip_dir / "aws_clip.mp4", spec)


@pytest.fixture(scope="session")
def bicubic_models():
    return endpoint_models("bicubic", 2)


@pytest.fixture(scope="session")
def inference():
    return load_inference()


@pytest.fixture
def pipeline(monkeypatch) -> Iterator[Pipeline]:
    """A fresh moto account with buckets, table, queues, topics; env set for the handlers."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("CHUNK_SECONDS", CHUNK_SECONDS)
    monkeypatch.setenv("DEFAULT_MODEL", "bicubic")
    with mock_aws():
        created = Pipeline(prefix="t").create()
        for key, value in created.env.items():
            monkeypatch.setenv(key, value)
        yield created
        aws.reset()


def upload(pipeline: Pipeline, path: Path, key: str, **metadata: str) -> None:
    extra = {"Metadata": metadata} if metadata else None
    aws.client("s3").upload_file(str(path), pipeline.env["INPUT_BUCKET"], key, extra)


def queue_depth(pipeline: Pipeline, name: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queues[name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def keys(bucket: str, prefix: str = "") -> list[str]:
    return sorted(aws.list_sizes(bucket, prefix))


def e2e_model() -> str:
    """The trained model when its weights are shipped (they are, once training lands)."""
    return "fast" if shipped_weights_path("fast", 2) else "bicubic"
