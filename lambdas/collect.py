"""collect: SageMaker async results (SNS -> SQS) -> idempotent chunk completion.

A success marks the chunk DONE and adds it to the job's done set; the delivery that completes
the set claims the merge (a conditional write) and sends the one merge message. A failure
counts the attempt once and re-enqueues the chunk, or fails the job after the last attempt
(or at once for a 4xx: the request itself is bad). Duplicates and stale reports do nothing.
"""

from __future__ import annotations

import json
import re
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
from lambdas.messages import unwrap_sns, work_item
from upscaler.cloud_contract import parse_inference_id
from upscaler.errors import MediaError
from upscaler.job import verify_chunk

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)
CLIENT_ERROR = re.compile(r"\(4\d\d\)")


def failure_reason(note: dict[str, Any]) -> str:
    """SageMaker's failure reason plus the first line of the error body the model wrote."""
    reason = note.get("failureReason") or "inference failed"
    location = (note.get("responseParameters") or {}).get("failureLocation")
    if location:
        try:
            body = aws.read_small(location, 2048).decode("utf-8", "replace").strip()
        except Exception:  # the reason alone is still worth recording
            body = ""
        if body:
            reason = f"{reason}: {body.splitlines()[0]}"
    return reason


def succeeded(job_id: str, index: int, attempt: int, output_location: str) -> None:
    chunk = jobs.get_chunk(job_id, index)
    if chunk is None:
        logger.info("success for an unknown chunk; ignored")
        return
    result = json.loads(aws.read_small(output_location))
    try:
        verify_chunk(index, result.get("frames"), int(chunk["output_frames"]))
    except MediaError as exc:
        failed(job_id, index, attempt, str(exc), permanent=False)
        return
    fields = {"frames": result["frames"], "seconds": result.get("seconds"), "done_attempt": attempt}
    job = jobs.chunk_done(job_id, index, fields)
    if job is None:
        logger.info("job is no longer running; success ignored")
        return
    done, total = len(job.get("done", ())), int(job["chunk_count"])
    logger.info("chunk done", extra={"done": done, "total": total})
    if done == total and jobs.claim_merge(job_id):
        try:
            aws.send(config.merge_queue_url(), {"job_id": job_id})
        except Exception:
            jobs.release_merge(job_id)
            raise
        logger.info("merge enqueued")


def failed(job_id: str, index: int, attempt: int, reason: str, permanent: bool) -> None:
    if not jobs.chunk_failed(job_id, index, attempt, reason):
        logger.info("duplicate or stale failure; ignored")
        return
    logger.warning("chunk failed", extra={"reason": reason})
    if permanent or attempt >= config.max_chunk_attempts():
        jobs.fail(job_id, f"chunk {index} failed (attempt {attempt}): {reason}")
        return
    job = jobs.get_job(job_id)
    if job is None or job["status"] not in (jobs.SPLIT, jobs.RUNNING):
        return
    item = work_item(job, index, attempt + 1, config.work_bucket())
    aws.send(config.work_queue_url(), item.to_dict())


def collect(note: dict[str, Any]) -> None:
    """Handle one SageMaker async notification."""
    try:
        job_id, index, attempt = parse_inference_id(note.get("inferenceId", ""))
    except ValueError:
        logger.warning("notification for an unknown inference; ignored", extra={"note": note})
        return
    logger.append_keys(job_id=job_id, chunk=index, attempt=attempt)
    if note.get("invocationStatus") == "Completed":
        succeeded(job_id, index, attempt, note["responseParameters"]["outputLocation"])
    else:
        permanent = bool(CLIENT_ERROR.search(note.get("failureReason") or ""))
        failed(job_id, index, attempt, failure_reason(note), permanent)


def record_handler(record: SQSRecord) -> None:
    collect(unwrap_sns(record.body))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
