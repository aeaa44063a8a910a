"""The deployed pipeline in one process, on moto, built from the synthesized stack.

`Pipeline.create()` synthesizes the CDK app (once per process) and creates what its template
describes (`lambdas.local_stack`). The real handlers run on the events the deployed wiring
sends: an upload's S3 notification invokes `split` (asynchronously: retried as the function's
EventInvokeConfig says, then its dead-letter queue); queues feed their functions in batches of
the event source mappings' sizes, deleting what succeeded and leaving reported failures for
redelivery. SageMaker is the one stand-in (`lambdas.local_endpoint`): by default it serves the
model.tar.gz the synth published, imported in isolation.

Two ways to drive it: `run(exact=True)` (what `upscaler pipeline-local` and the end-to-end
tests use) gives each handler exactly its function's environment from the template; without
`exact`, handlers see the process environment (handler-level tests set their own settings on
top of `Pipeline.env`, the resource names).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lambdas import aws, jobs
from lambdas.aws import parse_s3_uri
from lambdas.local_endpoint import (
    Artifact,
    LocalEndpoint,
    endpoint_models,
    environment,
    load_inference,
)
from lambdas.local_stack import REGION, Function, LocalStack
from upscaler.cloud_contract import Env, upload_key, upload_metadata

__all__ = [
    "CONTEXT",
    "REGION",
    "LocalEndpoint",
    "Pipeline",
    "endpoint_models",
    "environment",
    "load_inference",
    "run_local",
]

CONTEXT = SimpleNamespace(
    function_name="upscaler-local",
    memory_limit_in_mb=3008,
    invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:upscaler-local",
    aws_request_id="local",
)
Handler = Callable[[dict[str, Any], Any], Any]
logger = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """The stack's resources on moto (call inside `mock_aws()`), and a driver for them."""

    prefix: str = "upscaler"
    context: dict[str, Any] = field(default_factory=dict)
    exact: bool = False  # each handler gets exactly its function's environment
    overrides: dict[str, str] = field(default_factory=dict)  # ...but for these (tests only)
    env: dict[str, str] = field(default_factory=dict)

    def create(self) -> Pipeline:
        """Synthesize (cached) and create the template's resources; sets `env`."""
        from stacks.synth import cached

        aws.reset()
        self.synthesis = cached(self.context)
        self.stack = LocalStack(self.synthesis.template, self.prefix).create()
        self.queues = dict(self.stack.queues)
        self.queues["uploads"] = self.stack.taps["split"]
        config = self.stack.endpoint
        self.topics = {"success": config.success_topic, "error": config.error_topic}
        split = self.stack.functions["split"].env
        names = [
            k
            for k in split
            if k.endswith(("_BUCKET", "_TABLE", "_QUEUE_URL")) or k == Env.ENDPOINT_NAME
        ]
        self.env = {
            "AWS_DEFAULT_REGION": REGION,
            **{k: split[k] for k in names},
            Env.ALLOWED_BUCKETS: config.env[Env.ALLOWED_BUCKETS],
        }
        return self

    # --- the endpoint ----------------------------------------------------------------------
    def artifact(self) -> Artifact:
        """The model.tar.gz the synth published, extracted and imported in isolation."""
        config = self.stack.endpoint
        return Artifact(self.synthesis.file_asset(config.model_data_url), config.env)

    def endpoint(self, models: Any = None) -> LocalEndpoint:
        """Route dispatch's SageMaker calls to an in-process endpoint: serving `models`, or
        (None) the published artifact, with the template's output paths and topics."""
        config = self.stack.endpoint
        local = LocalEndpoint(
            models if models is not None else self.artifact(),
            "",
            config.success_topic,
            config.error_topic,
            output_path=config.output_path,
            failure_path=config.failure_path,
        )
        aws.override_client("sagemaker-runtime", local)
        return local

    # --- delivery --------------------------------------------------------------------------
    @contextlib.contextmanager
    def function_env(self, name: str) -> Iterator[None]:
        """Exactly function `name`'s environment (when `exact`): its variables set, every other
        function's variables removed; then `overrides`."""
        if not self.exact or name not in self.stack.functions:
            yield
            return
        own = self.stack.functions[name].env
        others = {k for f in self.stack.functions.values() for k in f.env} - set(own)
        removed = {k: os.environ.pop(k) for k in others if k in os.environ}
        try:
            with environment(**{**own, **self.overrides}):
                yield
        finally:
            os.environ.update(removed)

    def batch_size(self, queue: str) -> int:
        sizes = [s.batch_size for s in self.stack.sources if s.queue == queue]
        return min(sizes[0] if sizes else 10, 10)

    def receive(self, name: str) -> list[dict[str, Any]]:
        """One batch of a queue as Lambda's SQS event records (its mapping's batch size)."""
        sqs = aws.client("sqs")
        url = self.queues[name]
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=self.batch_size(name), AttributeNames=["All"]
        ).get("Messages", [])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn["Attributes"]["QueueArn"],
                "awsRegion": REGION,
            }
            for m in messages
        ]

    def _delete(self, name: str, record: dict[str, Any]) -> None:
        aws.client("sqs").delete_message(
            QueueUrl=self.queues[name], ReceiptHandle=record["receiptHandle"]
        )

    def drain(self, name: str, handler: Handler, function: str | None = None) -> int:
        """Feed a queue to an SQS-triggered handler until it is empty, as Lambda does
        (successes deleted, reported failures left for redelivery); messages handled."""
        function = function or handler.__module__.rsplit(".", 1)[-1]
        handled = 0
        for _ in range(100):
            records = self.receive(name)
            if not records:
                break
            with self.function_env(function):
                answer = handler({"Records": records}, CONTEXT) or {}
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            for record in records:
                if record["messageId"] not in failed:
                    self._delete(name, record)
            handled += len(records)
        return handled

    def drain_uploads(self, handler: Handler) -> int:
        """S3 notifications of the input bucket -> the split handler. With `exact`, invoked
        asynchronously as Lambda invokes it for S3: retried, then the event goes to split's
        dead-letter queue. Without, a handler that raises leaves the event on the queue for
        the next round (fault-injection tests count those rounds). Returns how many events
        split was invoked with (S3's test event is not passed on)."""
        function = self.stack.functions["split"]
        handled = 0
        while records := self.receive("uploads"):
            for record in records:
                event = json.loads(record["body"])
                if "Records" in event:  # not s3:TestEvent
                    if self.exact:
                        self._invoke_async(function, handler, event)
                    else:
                        handler(event, CONTEXT)
                    handled += 1
                self._delete("uploads", record)
        return handled

    def _invoke_async(self, function: Function, handler: Handler, event: dict[str, Any]) -> None:
        for attempt in range(function.retries + 1):
            try:
                with self.function_env(function.name):
                    handler(event, CONTEXT)
                return
            except Exception:
                logger.exception("%s failed (attempt %d)", function.name, attempt + 1)
        if function.dead_letter_url:
            aws.send(function.dead_letter_url, event)

    def run(self, endpoint: LocalEndpoint, reverse: bool = False, rounds: int = 50) -> None:
        """Drive every queue and the endpoint until nothing moves (or `rounds` passes)."""
        for _ in range(rounds):
            if not _steps(self, endpoint, reverse):
                return


def _steps(pipeline: Pipeline, endpoint: LocalEndpoint, reverse: bool) -> int:
    """One pass over the pipeline: every event source, in the order work flows."""
    from lambdas import collect, dispatch, merge, split

    return (
        pipeline.drain_uploads(split.handler)
        + pipeline.drain("work", dispatch.handler)
        + endpoint.run(reverse)
        + pipeline.drain("results", collect.handler)
        + pipeline.drain("merge", merge.handler)
    )


def run_local(
    source: str | Path,
    output: str | Path,
    *,
    chunk_seconds: float | None = None,
    context: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Upscale `source` into `output` through the synthesized pipeline on moto: upload to the
    input bucket (with the job spec `fields` as metadata, as `upscaler submit` sets them:
    model, scale, crf, deinterlace, square_pixels), drive it to the end; the job row, with
    `seconds` (wall time of the run, synthesis excluded).
    `chunk_seconds` replaces the template's CHUNK_SECONDS (tests that need several chunks)."""
    from moto import mock_aws

    from stacks.synth import cached

    cached(context or {})  # synthesize before the clock starts
    source, output = Path(source), Path(output)
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with environment(**credentials, AWS_DEFAULT_REGION=REGION), mock_aws():
        started = time.perf_counter()
        overrides = {Env.CHUNK_SECONDS: str(chunk_seconds)} if chunk_seconds else {}
        pipeline = Pipeline(context=context or {}, exact=True, overrides=overrides).create()
        endpoint = pipeline.endpoint()
        try:
            job_id = uuid.uuid4().hex[:20]
            key = upload_key(job_id, source.name)
            extra = {"Metadata": upload_metadata(fields)}
            aws.client("s3").upload_file(str(source), pipeline.env["INPUT_BUCKET"], key, extra)
            pipeline.run(endpoint)
            with environment(**pipeline.env):
                job = jobs.describe(job_id) or {"job_id": job_id, "status": "MISSING"}
            if job["status"] == jobs.DONE:
                bucket, out_key = parse_s3_uri(job["output"])
                aws.client("s3").download_file(bucket, out_key, str(output))
            job["seconds"] = round(time.perf_counter() - started, 3)
        finally:
            endpoint.server.close()
            aws.reset()
    return job
