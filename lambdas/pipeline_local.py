"""The whole AWS pipeline in one process, on moto, with no AWS account.

The real handlers run on real events: the upload's S3 notification (delivered by moto to a
queue) drives `split`; the work, results and merge queues are polled and handed to `dispatch`,
`collect` and `merge` as Lambda SQS batches. SageMaker is the one stand-in: `LocalEndpoint`
answers `invoke_endpoint_async` by running the real `sagemaker/inference.py` hooks in-process
and publishes SageMaker's success/error notification to SNS topics subscribed by the results
queue, exactly as the deployed endpoint does.

`run_local` is the engine of a future `upscaler pipeline-local` command; `Pipeline` is what the
tests drive step by step.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3

from lambdas import aws, jobs
from lambdas.aws import parse_s3_uri

REGION = "us-east-1"
INFERENCE = Path(__file__).resolve().parents[1] / "sagemaker" / "inference.py"
CONTEXT = SimpleNamespace(
    function_name="upscaler-local",
    memory_limit_in_mb=3008,
    invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:upscaler-local",
    aws_request_id="local",
)
UPLOADS_FILTER = {"Name": "prefix", "Value": "uploads/"}
Handler = Callable[[dict[str, Any], Any], Any]


def load_inference() -> ModuleType:
    """Import `sagemaker/inference.py` by path (the directory must never shadow the SDK)."""
    name = "upscaler_sagemaker_inference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, INFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LocalEndpoint:
    """An asynchronous SageMaker endpoint in-process: invocations queue up until `run()`."""

    def __init__(self, models: Any, root: str, success_topic: str, error_topic: str) -> None:
        self.inference = load_inference()
        self.models = models
        self.root = root.rstrip("/")
        self.topics = {"Completed": success_topic, "Failed": error_topic}
        self.pending: list[dict[str, Any]] = []

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, str]:
        name = uuid.uuid4().hex
        call = {
            **kwargs,
            "InferenceId": kwargs.get("InferenceId") or name,
            "OutputLocation": f"{self.root}/results/{name}.out",
            "FailureLocation": f"{self.root}/failures/{name}-error.out",
        }
        self.pending.append(call)
        return {k: call[k] for k in ("InferenceId", "OutputLocation", "FailureLocation")}

    def _answer(self, call: dict[str, Any]) -> tuple[bytes, str]:
        bucket, key = parse_s3_uri(call["InputLocation"])
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        module = self.inference
        data = module.input_fn(body, call["ContentType"])
        return module.output_fn(module.predict_fn(data, self.models), call.get("Accept", ""))

    def _result(self, call: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        """Run one invocation; (status, failure reason, responseParameters) as SageMaker's."""
        try:
            body, content_type = self._answer(call)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)
            kind = "client" if 400 <= status < 500 else "server"
            message = getattr(exc, "message", None) or str(exc)
            reason = (
                f"ClientError: Received {kind} error ({status}) from primary with message "
                f'"{message}". See the endpoint logs for more information.'
            )
            _put(call["FailureLocation"], message.encode())
            return "Failed", reason, {"failureLocation": call["FailureLocation"]}
        _put(call["OutputLocation"], body)
        return (
            "Completed",
            "",
            {"contentType": content_type, "outputLocation": call["OutputLocation"]},
        )

    def run(self, reverse: bool = False) -> int:
        """Answer every queued invocation (newest first with `reverse`) and publish each
        result's notification; return how many were answered."""
        calls, self.pending = self.pending, []
        for call in reversed(calls) if reverse else calls:
            status, reason, response = self._result(call)
            note = {
                "awsRegion": REGION,
                "eventTime": _now(),
                "receivedTime": _now(),
                "invocationStatus": status,
                "requestParameters": {
                    "contentType": call["ContentType"],
                    "endpointName": call["EndpointName"],
                    "inputLocation": call["InputLocation"],
                },
                "responseParameters": response,
                "inferenceId": call["InferenceId"],
                "eventVersion": "1.0",
                "eventSource": "aws:sagemaker",
                "eventName": "InferenceResult",
            }
            if reason:
                note["failureReason"] = reason
            aws.client("sns").publish(TopicArn=self.topics[status], Message=json.dumps(note))
        return len(calls)


def _put(uri: str, body: bytes) -> None:
    bucket, key = parse_s3_uri(uri)
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


@dataclass
class Pipeline:
    """The pipeline's AWS resources on moto (call inside `mock_aws()`), and a driver for it."""

    prefix: str = "upscaler"
    env: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)

    def create(self) -> Pipeline:
        """Buckets, job table, queues (with DLQs), topics and notifications; sets `env`."""
        aws.reset()
        s3, sqs, sns = (boto3.client(n, region_name=REGION) for n in ("s3", "sqs", "sns"))
        buckets = {n: f"{self.prefix}-{n}" for n in ("input", "work", "output")}
        for bucket in buckets.values():
            s3.create_bucket(Bucket=bucket)
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=f"{self.prefix}-jobs",
            KeySchema=[
                {"AttributeName": "job_id", "KeyType": "HASH"},
                {"AttributeName": "item", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "item", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for name in ("uploads", "work", "results", "merge"):
            dlq = sqs.create_queue(QueueName=f"{self.prefix}-{name}-dlq")["QueueUrl"]
            dlq_arn = self._arn(sqs, dlq)
            redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
            attributes = {"VisibilityTimeout": "0", "RedrivePolicy": redrive}
            url = sqs.create_queue(QueueName=f"{self.prefix}-{name}", Attributes=attributes)
            self.queues[name] = url["QueueUrl"]
        s3.put_bucket_notification_configuration(
            Bucket=buckets["input"],
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self._arn(sqs, self.queues["uploads"]),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [UPLOADS_FILTER]}},
                    }
                ]
            },
        )
        results_arn = self._arn(sqs, self.queues["results"])
        self.topics = {}
        for kind in ("success", "error"):
            topic = sns.create_topic(Name=f"{self.prefix}-{kind}")["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=results_arn)
            self.topics[kind] = topic
        self.env = {
            "AWS_DEFAULT_REGION": REGION,
            "INPUT_BUCKET": buckets["input"],
            "WORK_BUCKET": buckets["work"],
            "OUTPUT_BUCKET": buckets["output"],
            "JOB_TABLE": f"{self.prefix}-jobs",
            "WORK_QUEUE_URL": self.queues["work"],
            "MERGE_QUEUE_URL": self.queues["merge"],
            "ENDPOINT_NAME": f"{self.prefix}-endpoint",
            "ALLOWED_BUCKETS": buckets["work"],
        }
        return self

    @staticmethod
    def _arn(sqs: Any, url: str) -> str:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    def endpoint(self, models: Any) -> LocalEndpoint:
        """Route dispatch's SageMaker calls to an in-process endpoint serving `models`."""
        prefix = f"s3://{self.env['WORK_BUCKET']}"  # results/ and failures/, as deployed
        local = LocalEndpoint(models, prefix, self.topics["success"], self.topics["error"])
        aws.override_client("sagemaker-runtime", local)
        return local

    def receive(self, name: str) -> list[dict[str, Any]]:
        """Up to 10 messages of a queue as Lambda's SQS event records."""
        sqs = aws.client("sqs")
        url = self.queues[name]
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        arn = self._arn(sqs, url)
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]

    def run(self, endpoint: LocalEndpoint, reverse: bool = False, rounds: int = 50) -> None:
        """Drive every queue and the endpoint until nothing moves (or `rounds` passes)."""
        for _ in range(rounds):
            if not _steps(self, endpoint, reverse):
                return

    def _delete(self, name: str, record: dict[str, Any]) -> None:
        aws.client("sqs").delete_message(
            QueueUrl=self.queues[name], ReceiptHandle=record["receiptHandle"]
        )

    def drain(self, name: str, handler: Handler) -> int:
        """Feed a queue to an SQS-triggered handler until it is empty, as Lambda does
        (successes deleted, reported failures left for redelivery); messages handled."""
        handled = 0
        for _ in range(100):
            records = self.receive(name)
            if not records:
                break
            answer = handler({"Records": records}, CONTEXT) or {}
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            for record in records:
                if record["messageId"] not in failed:
                    self._delete(name, record)
            handled += len(records)
        return handled

    def drain_uploads(self, handler: Handler) -> int:
        """S3 notifications (moto delivers them to the uploads queue) -> the split handler."""
        handled = 0
        for record in self.receive("uploads"):
            event = json.loads(record["body"])
            if "Records" in event:  # not s3:TestEvent
                handler(event, CONTEXT)
                handled += 1
            self._delete("uploads", record)
        return handled


def _steps(pipeline: Pipeline, endpoint: LocalEndpoint, reverse: bool) -> int:
    from lambdas import collect, dispatch, merge, split

    return (
        pipeline.drain_uploads(split.handler)
        + pipeline.drain("work", dispatch.handler)
        + endpoint.run(reverse)
        + pipeline.drain("results", collect.handler)
        + pipeline.drain("merge", merge.handler)
    )


def endpoint_models(model: str, scale: int) -> Any:
    """What `model_fn` loads from the model.tar.gz `upscaler.package` would build."""
    from upscaler.models.registry import shipped_weights_path

    inference = load_inference()
    with tempfile.TemporaryDirectory() as model_dir:
        checkpoint = Path(model) if model.endswith((".pt", ".pth")) else None
        checkpoint = checkpoint or shipped_weights_path(model, scale)
        if checkpoint is not None:
            shutil.copyfile(checkpoint, Path(model_dir) / "model.pt")
        with environment(UPSCALER_MODEL=model, UPSCALER_SCALE=str(scale)):
            return inference.model_fn(model_dir)


def run_local(
    source: str | Path,
    output: str | Path,
    model: str = "fast",
    scale: int = 2,
    chunk_seconds: float = 10.0,
    crf: int = 18,
) -> dict[str, Any]:
    """Upscale `source` into `output` through the whole pipeline on moto; the job row."""
    from moto import mock_aws

    source, output = Path(source), Path(output)
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with environment(**credentials, AWS_DEFAULT_REGION=REGION), mock_aws():
        pipeline = Pipeline().create()
        settings = {"CHUNK_SECONDS": str(chunk_seconds), "CRF": str(crf)}
        with environment(**pipeline.env, **settings):
            endpoint = pipeline.endpoint(endpoint_models(model, scale))
            job_id = uuid.uuid4().hex[:20]
            key = f"uploads/{job_id}/{source.name}"
            meta = {"Metadata": {"model": model, "scale": str(scale)}}
            aws.client("s3").upload_file(str(source), pipeline.env["INPUT_BUCKET"], key, meta)
            pipeline.run(endpoint)
            job = jobs.describe(job_id) or {"job_id": job_id, "status": "MISSING"}
            if job["status"] == jobs.DONE:
                bucket, out_key = parse_s3_uri(job["output"])
                aws.client("s3").download_file(bucket, out_key, str(output))
        aws.reset()
    return job
