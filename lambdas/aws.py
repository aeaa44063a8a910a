"""boto3 clients (created once per container) and small S3 helpers."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

_overrides: dict[str, Any] = {}


@functools.cache
def _client(name: str) -> Any:
    return boto3.client(name)


def client(name: str) -> Any:
    """The boto3 client for `name`, or an object installed with `override_client`."""
    return _overrides.get(name) or _client(name)


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource."""
    return boto3.resource("dynamodb").Table(name)


def override_client(name: str, obj: Any | None) -> None:
    """Route `client(name)` to `obj` (e.g. an in-process SageMaker endpoint); None removes it."""
    if obj is None:
        _overrides.pop(name, None)
    else:
        _overrides[name] = obj


def reset() -> None:
    """Forget cached clients (tests start a fresh moto backend each time)."""
    _client.cache_clear()
    table.cache_clear()
    _overrides.clear()


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); ValueError for anything else."""
    parts = urlsplit(uri)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return parts.netloc, key


def download(uri: str, path: Path, version_id: str | None = None) -> Path:
    """Download an S3 object (that version of it, when given) to `path`."""
    bucket, key = parse_s3_uri(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"VersionId": version_id} if version_id else None
    client("s3").download_file(bucket, key, str(path), ExtraArgs=extra)
    return path


def upload(path: Path, uri: str, content_type: str = "video/mp4") -> None:
    bucket, key = parse_s3_uri(uri)
    client("s3").upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})


def put_json(uri: str, data: dict[str, Any]) -> None:
    bucket, key = parse_s3_uri(uri)
    body = json.dumps(data).encode()
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def read_small(uri: str, limit: int = 64 * 1024) -> bytes:
    """The first `limit` bytes of an object (results and error bodies are small)."""
    bucket, key = parse_s3_uri(uri)
    obj = client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}")
    return obj["Body"].read()


def head(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """HeadObject's answer (for that version, when given), or None when it does not exist."""
    version = {"VersionId": version_id} if version_id else {}
    try:
        return client("s3").head_object(Bucket=bucket, Key=key, **version)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def delete_prefix(bucket: str, prefix: str) -> int:
    """Delete every object under `prefix`; return how many."""
    keys = [{"Key": key} for key in list_sizes(bucket, prefix)]
    for start in range(0, len(keys), 1000):
        batch = {"Objects": keys[start : start + 1000], "Quiet": True}
        client("s3").delete_objects(Bucket=bucket, Delete=batch)
    return len(keys)


def send(queue_url: str, body: dict[str, Any]) -> None:
    client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def send_all(queue_url: str, bodies: list[dict[str, Any]]) -> None:
    """Send messages in batches of ten; raise if any of them was refused."""
    sqs = client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(body)}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} message(s): {failed[0]}")


def list_sizes(bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size of every object under `prefix`."""
    sizes: dict[str, int] = {}
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        sizes.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return sizes
