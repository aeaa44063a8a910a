"""Environment configuration shared by the handlers (read at call time, so tests can set it)."""

from __future__ import annotations

import os


def env(name: str, default: str | None = None) -> str:
    """An environment variable, or a clear error naming it when it is required and unset."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def input_bucket() -> str:
    return env("INPUT_BUCKET")


def work_bucket() -> str:
    return env("WORK_BUCKET")


def output_bucket() -> str:
    return env("OUTPUT_BUCKET")


def job_table() -> str:
    return env("JOB_TABLE")


def work_queue_url() -> str:
    return env("WORK_QUEUE_URL")


def merge_queue_url() -> str:
    return env("MERGE_QUEUE_URL")


def endpoint_name() -> str:
    return env("ENDPOINT_NAME")


def max_chunk_attempts() -> int:
    return env_int("MAX_CHUNK_ATTEMPTS", 3)


def chunk_seconds() -> float:
    return env_float("CHUNK_SECONDS", 10.0)
