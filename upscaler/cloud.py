"""`upscaler submit` / `upscaler status`: talk to a deployed pipeline.

The only module of the package that uses the AWS SDK, and only inside these commands
(imported lazily), so the core library stays free of it. Resource names come from the
CloudFormation stack's outputs (`--stack`, default `Upscaler`) or explicit options.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from upscaler.cli_picture import add_picture_args, picture_fields
from upscaler.cloud_contract import (
    DONE,
    FAILED,
    FETCHING,
    UPLOAD_PREFIX,
    Output,
    describe_row,
    fetching_row,
    job_key,
    upload_metadata,
)
from upscaler.errors import InputError, UpscalerError
from upscaler.job import JobSpec, check_served, parse_served

OUTPUT_KEYS = {
    "input_bucket": Output.INPUT_BUCKET,
    "job_table": Output.JOB_TABLE,
    "fetch_function": Output.FETCH_FUNCTION,
    "upload_prefix": Output.UPLOAD_PREFIX,
}
#: Read from the stack only: what the endpoint serves and what a plain submit asks for.
JOB_OUTPUTS = {
    "served_models": Output.SERVED_MODELS,
    "default_model": Output.DEFAULT_MODEL,
    "default_scale": Output.DEFAULT_SCALE,
}
#: A plain submit's model and scale where the stack says nothing (explicit resource options).
FALLBACK = {"model": "fast", "scale": 2}
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
    names.update({key: outputs.get(output) for key, output in JOB_OUTPUTS.items()})
    names["upload_prefix"] = names["upload_prefix"] or UPLOAD_PREFIX
    return names  # type: ignore[return-value]


def submit(args: argparse.Namespace) -> dict[str, Any]:
    """Upload a local file, or hand a URL to the fetch Lambda; return the job id at once."""
    names = stack_resources(args)
    defaults = {
        "model": names.get("default_model") or FALLBACK["model"],
        "scale": names.get("default_scale") or FALLBACK["scale"],
    }
    fields = {"model": args.model, "scale": args.scale, "crf": args.crf, **picture_fields(args)}
    spec = JobSpec.parse(fields, defaults)
    if names.get("served_models"):
        try:
            check_served(spec, parse_served(names["served_models"]))
        except ValueError as exc:
            raise UpscalerError(f"stack output {Output.SERVED_MODELS}: {exc}") from None
    job_id = uuid.uuid4().hex[:20]
    source = args.source
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        result = _fetch(names, job_id, source, spec)
    else:
        result = _upload(names, job_id, Path(source), spec)
    if args.wait:
        return follow(_table(names), job_id, args.interval)
    return result


def _fetch(names: dict[str, str], job_id: str, url: str, spec: JobSpec) -> dict[str, Any]:
    """Record the job FETCHING, then invoke fetch asynchronously (a long download is never
    timed out, and never run twice, by the SDK's read timeout and retries)."""
    table = _table(names)
    table.put_item(
        Item=fetching_row(job_id, url, _now()), ConditionExpression="attribute_not_exists(job_id)"
    )
    payload = {"url": url, "job_id": job_id, **_request_fields(spec)}
    try:
        response = (
            _boto3()
            .client("lambda")
            .invoke(
                FunctionName=names["fetch_function"],
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        )
        if response["StatusCode"] != 202:  # Lambda's answer to an accepted async invocation
            raise RuntimeError(f"status {response['StatusCode']} instead of 202")
    except Exception as exc:
        reason = f"cannot invoke {names['fetch_function']}: {exc}"
        table.update_item(
            Key=job_key(job_id),
            UpdateExpression="SET #s = :failed, reason = :reason",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": FAILED, ":reason": reason},
        )
        raise UpscalerError(reason) from None
    return {"job_id": job_id, "status": FETCHING, "source_url": url}


def _upload(names: dict[str, str], job_id: str, path: Path, spec: JobSpec) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: no such file (or give an http(s) URL)")
    name = SAFE_NAME.sub("_", path.name).lstrip(".-") or "video.mp4"
    key = f"{names['upload_prefix']}{job_id}/{name}"
    metadata = upload_metadata(_request_fields(spec))
    _boto3().client("s3").upload_file(
        str(path), names["input_bucket"], key, ExtraArgs={"Metadata": metadata}
    )
    return {"job_id": job_id, "status": "UPLOADED", "source": f"s3://{names['input_bucket']}/{key}"}


def _request_fields(spec: JobSpec) -> dict[str, Any]:
    """What a submission asks of the pipeline (the rest is the stack's encode defaults)."""
    keys = ("model", "scale", "crf", "deinterlace", "square_pixels")
    return {k: v for k, v in spec.to_dict().items() if k in keys}


def _table(names: dict[str, str]) -> Any:
    return _boto3().resource("dynamodb").Table(names["job_table"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _row(table: Any, job_id: str) -> dict[str, Any]:
    item = table.get_item(Key=job_key(job_id), ConsistentRead=True)
    if "Item" not in item:
        raise InputError(f"no job {job_id!r} in {table.name}")
    return describe_row(item["Item"])


def follow(table: Any, job_id: str, interval: float) -> dict[str, Any]:
    """Poll the job until it is DONE or FAILED, printing each change of progress to stderr.

    Returns the DONE row; a FAILED job raises with its reason.
    """
    shown = None
    while True:
        row = _row(table, job_id)
        line = f"{job_id}: {row['status']}"
        if row.get("chunk_count"):
            line += f" ({row['chunks_done']}/{row['chunk_count']} chunks)"
        elif row.get("fetched_bytes"):
            line += f" ({row['fetched_bytes'] / 1e6:.1f} MB downloaded)"
        if line != shown:
            print(line, file=sys.stderr, flush=True)
            shown = line
        if row["status"] == FAILED:
            raise UpscalerError(f"job {job_id} failed: {row.get('reason', 'no reason recorded')}")
        if row["status"] == DONE:
            return row
        time.sleep(interval)


def status(args: argparse.Namespace) -> dict[str, Any]:
    """The job row from the job table, with `chunks_done` counted (`--wait`: until it ends)."""
    table = _table(stack_resources(args))
    if args.wait:
        return follow(table, args.job_id, args.interval)
    return _row(table, args.job_id)


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
            p.add_argument("--model", help="default: the stack's DefaultModel")
            p.add_argument("--scale", type=int, choices=(2, 3, 4), help="default: DefaultScale")
            p.add_argument("--crf", type=int, default=18)
            add_picture_args(p)
            p.set_defaults(func=lambda a: _print(submit(a)))
        else:
            p.add_argument("job_id")
            p.set_defaults(func=lambda a: _print(status(a)))
        p.add_argument("--wait", action="store_true", help="follow the job until it ends")
        p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
        p.add_argument("--stack", default="Upscaler", help="CloudFormation stack name")
        for key in OUTPUT_KEYS:
            p.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None)
