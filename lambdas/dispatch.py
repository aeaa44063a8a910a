"""dispatch: a work message -> one asynchronous invocation of the SageMaker endpoint.

The request body is a small JSON job spec written to the work bucket; the invocation carries
only its S3 URI. Errors (throttling, endpoint busy) fail the message, which SQS redelivers.
"""

from __future__ import annotations

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
from lambdas.messages import WorkItem
from upscaler.cloud_contract import inference_id, request_key

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def dispatch(item: WorkItem) -> str | None:
    """Invoke the endpoint for one chunk attempt; None when the work is stale or done."""
    logger.append_keys(job_id=item.job_id, chunk=item.index, attempt=item.attempt)
    job = jobs.get_job(item.job_id)
    if job is None or job["status"] not in (jobs.SPLIT, jobs.RUNNING):
        logger.info("job is not running; dropping the work message")
        return None
    chunk = jobs.get_chunk(item.job_id, item.index)
    if chunk is None or chunk["status"] == jobs.DONE or int(chunk["attempt"]) != item.attempt:
        logger.info("chunk is done or on another attempt; dropping the work message")
        return None
    request = aws.s3_uri(config.work_bucket(), request_key(item.job_id, item.index, item.attempt))
    aws.put_json(request, item.request())
    response = aws.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=config.endpoint_name(),
        InputLocation=request,
        ContentType="application/json",
        Accept="application/json",
        InferenceId=inference_id(item.job_id, item.index, item.attempt),
        InvocationTimeoutSeconds=config.invocation_timeout_s(),
    )
    fields = {
        "inference_id": response["InferenceId"],
        "output_location": response.get("OutputLocation"),
        "failure_location": response.get("FailureLocation"),
        "request": request,
    }
    jobs.chunk_dispatched(item.job_id, item.index, item.attempt, fields)
    logger.info("dispatched", extra={"inference_id": response["InferenceId"]})
    return response["InferenceId"]


def record_handler(record: SQSRecord) -> None:
    dispatch(WorkItem.from_json(record.body))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
