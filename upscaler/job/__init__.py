"""The job layer: one spec, one validator and the steps around the model, shared by the CLI
engine (`upscaler upscale`) and the pipeline's Lambdas. Torch-free and AWS-free."""

from upscaler.job.spec import (
    MODEL_NAME,
    SCALES,
    JobSpec,
    check_served,
    describe_served,
    parse_served,
)
from upscaler.job.steps import (
    Prepared,
    check_output_limits,
    finish,
    media_facts,
    prepare,
    verify_chunk,
)

__all__ = [
    "MODEL_NAME",
    "SCALES",
    "JobSpec",
    "Prepared",
    "check_output_limits",
    "check_served",
    "describe_served",
    "finish",
    "media_facts",
    "parse_served",
    "prepare",
    "verify_chunk",
]
