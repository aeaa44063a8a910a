"""merge: all chunks upscaled -> one video in the output bucket, job DONE (or FAILED).

The source's audio and subtitles are stream-copied by the core's `merge_chunks`. The result is
uploaded under a temporary key and copied to its final key, so no partial object is ever
visible there; a redelivered message finds the output and only completes the job row.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import aws, config, jobs
from upscaler import cloud_contract as contract
from upscaler.errors import InputError, MediaError, UpscalerError
from upscaler.job import finish
from upscaler.media.limits import Limits

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def output_key(job: dict[str, Any]) -> str:
    return contract.output_key(str(job["job_id"]), str(job["name"]), int(job["scale"]))


def _upscaled_chunks(job: dict[str, Any]) -> tuple[list[str], int]:
    """The keys of every upscaled chunk, in order, and their total size."""
    job_id, count = str(job["job_id"]), int(job["chunk_count"])
    sizes = aws.list_sizes(config.work_bucket(), contract.upscaled_prefix(job_id))
    keys = [contract.upscaled_key(job_id, i) for i in range(count)]
    missing = [k for k in keys if k not in sizes]
    if missing:
        raise MediaError(f"{len(missing)} upscaled chunk(s) are missing, first {missing[0]}")
    return keys, sum(sizes[k] for k in keys)


def _merge_to_file(job: dict[str, Any], tmp: Path) -> Path:
    """Download the source and the upscaled chunks, merge, check the frame count."""
    keys, total = _upscaled_chunks(job)
    free = shutil.disk_usage(tmp).free
    needed = int(job["source_bytes"]) + 2 * total
    if free < needed:
        raise InputError(
            f"merging needs about {needed} bytes of scratch space; the merge function has "
            f"{free} (raise its ephemeral storage)"
        )
    local = tmp / f"source{PurePosixPath(job['source']).suffix}"
    source = aws.download(job["source"], local, job.get("source_version"))
    work = config.work_bucket()
    chunks = [
        aws.download(aws.s3_uri(work, k), tmp / "up" / f"{contract.chunk_name(i)}.mp4")
        for i, k in enumerate(keys)
    ]
    output = tmp / PurePosixPath(output_key(job)).name
    finish(
        chunks,
        source,
        output,
        rotation=int(job.get("media", {}).get("rotation", 0)),
        frame_count=int(job["output_frames"]),
        limits=Limits.from_env(),
    )
    return output


def _publish(path: Path, bucket: str, key: str) -> None:
    """Upload under a temporary key, then copy to `key` (multipart for big files) and clean."""
    temp_key = contract.output_tmp_key(key)
    aws.upload(path, aws.s3_uri(bucket, temp_key))
    aws.client("s3").copy({"Bucket": bucket, "Key": temp_key}, bucket, key)
    aws.client("s3").delete_object(Bucket=bucket, Key=temp_key)


def _finish(job: dict[str, Any], key: str, size: int, merge_s: float) -> None:
    bucket = config.output_bucket()
    created = datetime.fromisoformat(str(job["created_at"]))
    total_s = (datetime.fromisoformat(jobs.now()) - created).total_seconds()
    fields = {"output": aws.s3_uri(bucket, key), "output_bytes": size, "total_seconds": total_s}
    if merge_s:
        fields["merge_seconds"] = merge_s
    jobs.set_status(str(job["job_id"]), jobs.DONE, (jobs.MERGING,), **fields)
    aws.delete_prefix(config.work_bucket(), contract.job_prefix(str(job["job_id"])))
    logger.info("job done", extra=fields)


def merge(job_id: str) -> None:
    """Merge one job's chunks into its output video."""
    logger.append_keys(job_id=job_id)
    job = jobs.get_job(job_id)
    if job is None or job["status"] != jobs.MERGING:
        logger.info("job is not waiting for a merge; ignored")
        return
    bucket, key = config.output_bucket(), output_key(job)
    existing = aws.head(bucket, key)
    if existing is not None:  # a previous attempt published it (and may have died after)
        aws.client("s3").delete_object(Bucket=bucket, Key=contract.output_tmp_key(key))
        _finish(job, key, existing["ContentLength"], 0.0)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="merge-") as tmp:
        try:
            output = _merge_to_file(job, Path(tmp))
        except UpscalerError as exc:
            reason = str(exc).replace(f"{tmp}/", "")
            logger.warning("merge failed", extra={"reason": reason})
            jobs.fail(job_id, f"merge: {reason}")
            return
        size = output.stat().st_size
        _publish(output, bucket, key)
    _finish(job, key, size, time.perf_counter() - started)


def record_handler(record: SQSRecord) -> None:
    merge(str(record.json_body["job_id"]))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
