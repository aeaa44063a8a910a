"""The deployment's job settings from the environment: the defaults of a plain upload, what
the endpoint serves, and merge's scratch space (split and fetch use them; the other handlers
never load the job layer)."""

from __future__ import annotations

import os
from typing import Any

from lambdas.config import env, env_int
from upscaler.cloud_contract import Env
from upscaler.job import JobSpec, check_served, parse_served
from upscaler.job.budget import LAMBDA_MAX_EPHEMERAL_MIB


def merge_scratch_mib() -> int:
    """The merge function's ephemeral storage (the stack deploys Lambda's maximum)."""
    return env_int(Env.MERGE_SCRATCH_MIB, LAMBDA_MAX_EPHEMERAL_MIB)


def served_models() -> dict[str, tuple[int, ...]] | None:
    """What the endpoint serves (SERVED_MODELS), or None where it is not set (no check).

    The stack always sets it; a malformed value is a deployment error, raised with its name.
    """
    text = os.environ.get(Env.SERVED_MODELS)
    if not text:
        return None
    try:
        return parse_served(text)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {Env.SERVED_MODELS}: {exc}") from None


def job_spec(fields: dict[str, Any]) -> JobSpec:
    """A request's job spec over the deployment's defaults, refused unless it is served."""
    defaults = {
        "model": env(Env.DEFAULT_MODEL, "fast"),
        "scale": env(Env.DEFAULT_SCALE, "2"),
        "codec": env(Env.CODEC, "h264"),
        "crf": env(Env.CRF, "18"),
        "preset": env(Env.PRESET, "veryfast"),
    }
    spec = JobSpec.parse(fields, defaults)
    served = served_models()
    if served is not None:
        check_served(spec, served)
    return spec
