"""`upscaler pipeline-local`: the AWS pipeline, as `cdk deploy` would create it, on this machine.

The stack is synthesized, its resources are created on moto and the real Lambda handlers and
the published endpoint artifact process the video (see lambdas/pipeline_local.py). Needs a
source checkout with the development extras (aws-cdk-lib, moto); they are imported only
here, so the core stays free of boto3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from upscaler.cli_picture import add_picture_args, picture_fields
from upscaler.cloud_contract import DONE
from upscaler.errors import InputError, UpscalerError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline-local", help="run a video through the synthesized AWS pipeline on moto"
    )
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--model", default=None, help="default: the stack's default_model")
    p.add_argument("--scale", type=int, default=None, choices=(2, 3, 4))
    add_picture_args(p)
    p.add_argument("--json", action="store_true", help="print the job row as JSON")
    p.set_defaults(func=cmd_pipeline_local)


def cmd_pipeline_local(args: argparse.Namespace) -> int:
    source = Path(args.input)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    try:
        from lambdas.pipeline_local import run_local
    except ImportError as exc:
        raise UpscalerError(
            f"pipeline-local needs a source checkout with requirements-dev.txt ({exc})"
        ) from None
    with contextlib.redirect_stdout(sys.stderr):  # the handlers' JSON logs; stdout: the result
        spec = {"model": args.model, "scale": args.scale, **picture_fields(args)}
        job: dict[str, Any] = run_local(source, Path(args.output), **spec)
    if args.json:
        print(json.dumps(job, indent=2, sort_keys=True, default=str))
    if job["status"] != DONE:
        raise UpscalerError(f"job {job['job_id']} {job['status']}: {job.get('reason', '')}")
    if not args.json:
        print(
            f"{args.output}: {job['model']} x{job['scale']}, {job['chunk_count']} chunk(s), "
            f"{job['seconds']} s through the pipeline"
        )
    return 0
