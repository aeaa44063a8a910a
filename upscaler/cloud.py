"""`upscaler submit` / `upscaler status`: talk to a deployed pipeline.

The only module of the package that uses the AWS SDK, and only inside these commands
(imported lazily), so the core library stays free of it. Resource names come from the
CloudFormation stack's outputs (`--stack`, default `Upscaler`) or explicit options.
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from pathlib import Path
from typing import Any

from upscaler.cloud_contract import UPLOAD_PREFIX, Output, describe_row, job_key
from upscaler.errors import InputError, UpscalerError
from upscaler.job import JobSpec

OUTPUT_KEYS = {
    "input_bucket": Output.INPUT_BUCKET,
    "job_table": Output.JOB_TABLE,
    "fetch_function": Output.FETCH_FUNCTION,
    "upload_prefix": Output.UPLOAD_PREFIX,
    "served_models": "ServedModels",
}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _boto3():
    try:
        import boto3
    except ImportError:
        raise UpscalerError("the cloud commands need boto3: pip install boto3") from None
    return boto3


def stack_resources(args: argparse.Namespace) -> dict[str, str]:
    """Resource names: explicit options win, the rest come from the stack's outputs."""
    names = {key: getattr(args, key, None) for key in OUTPUT_KEYS}
    if all(names[k] for k in ("input_bucket", "job_table", "fetch_function")):
        return {**names, "upload_prefix": names["upload_prefix"] or UPLOAD_PREFIX}
    cfn = _boto3().client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    except Exception as exc:
        raise UpscalerError(f"cannot read stack {args.stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for key, output in OUTPUT_KEYS.items():
        names[key] = names[key] or outputs.get(output)
    names["upload_prefix"] = names["upload_prefix"] or UPLOAD_PREFIX
    return names  # type: ignore[return-value]


def check_served(served: str | None, model: str, scale: int) -> None:
    """Refuse, before any upload, a model the stack's endpoint does not serve (its manifest,
    the `ServedModels` output); no manifest known (explicit names): split checks."""
    manifest = json.loads(served) if served else None
    if manifest is not None and int(scale) not in manifest.get(model, ()):
        listing = ", ".join(f"{n} x{'/x'.join(map(str, s))}" for n, s in manifest.items())
        raise InputError(f"the endpoint does not serve {model} x{scale}; it serves: {listing}")


def submit(args: argparse.Namespace) -> dict[str, Any]:
    """Upload a local file, or ask the fetch Lambda to pull a URL; return the job id."""
    JobSpec.parse({"model": args.model, "scale": args.scale, "crf": args.crf})
    names = stack_resources(args)
    check_served(names.get("served_models"), args.model, args.scale)
    job_id = uuid.uuid4().hex[:20]
    source = args.source
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        payload = {"url": source, "job_id": job_id, "model": args.model, "scale": args.scale}
        response = (
            _boto3()
            .client("lambda")
            .invoke(FunctionName=names["fetch_function"], Payload=json.dumps(payload).encode())
        )
        result = json.loads(response["Payload"].read() or b"{}")
        if result.get("status") == "FAILED":
            raise InputError(f"fetch refused {source}: {result.get('reason')}")
        return {"job_id": result.get("job_id", job_id), "status": result.get("status")}
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source}: no such file (or give an http(s) URL)")
    name = SAFE_NAME.sub("_", path.name).lstrip(".-") or "video.mp4"
    key = f"{names['upload_prefix']}{job_id}/{name}"
    metadata = {"model": args.model, "scale": str(args.scale), "crf": str(args.crf)}
    _boto3().client("s3").upload_file(
        str(path), names["input_bucket"], key, ExtraArgs={"Metadata": metadata}
    )
    return {"job_id": job_id, "status": "UPLOADED", "source": f"s3://{names['input_bucket']}/{key}"}


def status(args: argparse.Namespace) -> dict[str, Any]:
    """The job row from the job table, with `chunks_done` counted."""
    names = stack_resources(args)
    table = _boto3().resource("dynamodb").Table(names["job_table"])
    item = table.get_item(Key=job_key(args.job_id), ConsistentRead=True)
    if "Item" not in item:
        raise InputError(f"no job {args.job_id!r} in {names['job_table']}")
    return describe_row(item["Item"])


def _print(result: dict[str, Any]) -> int:
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `submit` and `status` on the CLI's subparsers."""
    for name, helptext in (
        ("submit", "send a video file or URL to the AWS pipeline"),
        ("status", "show a pipeline job's progress"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "submit":
            p.add_argument("source", help="local video file or http(s)/YouTube URL")
            p.add_argument("--model", default="fast")
            p.add_argument("--scale", type=int, default=2, choices=(2, 4))
            p.add_argument("--crf", type=int, default=18)
            p.set_defaults(func=lambda a: _print(submit(a)))
        else:
            p.add_argument("job_id")
            p.set_defaults(func=lambda a: _print(status(a)))
        p.add_argument("--stack", default="Upscaler", help="CloudFormation stack name")
        for key in OUTPUT_KEYS:
            p.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None)
