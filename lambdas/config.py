"""Environment configuration shared by the handlers (read at call time, so tests can set it).

The variable names are the cloud contract's (`upscaler.cloud_contract.Env`)."""

from __future__ import annotations

import os

from upscaler.cloud_contract import Env


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
    return env(Env.INPUT_BUCKET)


def work_bucket() -> str:
    return env(Env.WORK_BUCKET)


def output_bucket() -> str:
    return env(Env.OUTPUT_BUCKET)


def job_table() -> str:
    return env(Env.JOB_TABLE)


def work_queue_url() -> str:
    return env(Env.WORK_QUEUE_URL)


def merge_queue_url() -> str:
    return env(Env.MERGE_QUEUE_URL)


def endpoint_name() -> str:
    return env(Env.ENDPOINT_NAME)


def max_chunk_attempts() -> int:
    return env_int(Env.MAX_CHUNK_ATTEMPTS, 3)


def chunk_seconds() -> float:
    return env_float(Env.CHUNK_SECONDS, 10.0)


def invocation_timeout_s() -> int:
    """The async invocation timeout dispatch asks for (the stack's INFERENCE_TIMEOUT_S)."""
    return env_int(Env.INVOCATION_TIMEOUT_S, 900)


def instance_type() -> str | None:
    """The endpoint's instance type, or None where it is not set (no time estimate)."""
    return os.environ.get(Env.INSTANCE_TYPE) or None
