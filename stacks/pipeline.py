"""Pipeline: the Lambda handlers (one slim image, no torch), their queues, triggers, alarms.

    input bucket (uploads/) --S3 event--> split --> work queue --> dispatch --> endpoint
    endpoint --SNS success/error--> results queue --> collect --> merge queue --> merge
    fetch (invoked directly: URL -> input bucket uploads/)

Every queue has a DLQ (redrive after `max_receive_count`), SQS-managed SSE and a TLS-only
policy; every DLQ has an alarm on its depth. Each function has its own role holding exactly the
statements below (no managed policies) and its own log group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import DLQ_REASONS, skip
from stacks.config import Settings
from stacks.endpoint import INFERENCE_TIMEOUT_S, Endpoint
from stacks.nag import acknowledge, acknowledge_resources, rendered
from stacks.storage import Storage
from upscaler.cloud_contract import (
    CHUNKS,
    FAILURES_PREFIX,
    JOBS_PREFIX,
    OUTPUT_TMP_PREFIX,
    OUTPUTS_PREFIX,
    REQUESTS,
    RESULTS_PREFIX,
    UPLOAD_PREFIX,
    Env,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The slim image: no handler here runs a model, so none needs torch (or matplotlib).
DOCKERFILE = "lambdas/Dockerfile.slim"


@dataclass(frozen=True)
class Sizing:
    """Memory (MB), timeout and /tmp (MiB) of one function; docs/AWS.md explains each."""

    memory_mb: int
    timeout: cdk.Duration
    ephemeral_mib: int = 512


def sizing(settings: Settings) -> dict[str, Sizing]:
    media = settings.media_memory_mb
    return {
        # Streams a download (size-limited) to /tmp, then uploads it.
        "fetch": Sizing(1024, cdk.Duration.minutes(15), 10240),
        # Downloads the source and writes stream-copied chunks: source + chunks on /tmp.
        "split": Sizing(media, cdk.Duration.minutes(15), 10240),
        # Writes a small JSON request and calls InvokeEndpointAsync: I/O bound.
        "dispatch": Sizing(256, cdk.Duration.seconds(60)),
        # Conditional DynamoDB updates and small S3 reads: I/O bound.
        "collect": Sizing(256, cdk.Duration.seconds(60)),
        # Downloads upscaled chunks + source, muxes, uploads: chunks + output on /tmp.
        "merge": Sizing(media, cdk.Duration.minutes(15), 10240),
        # Scans the job table for stale unfinished jobs: I/O bound, once every 15 minutes.
        "sweep": Sizing(256, cdk.Duration.minutes(5)),
    }


class Pipeline(Construct):
    """Functions, queues, event sources, DLQ alarms; each function's grants live here."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: Settings,
        storage: Storage,
        endpoint: Endpoint,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, cid)
        self._stack = cdk.Stack.of(self)
        self._storage = storage
        self.sizes = sizing(settings)
        # A burst of uploads must not start hundreds of 3 GB functions (docs/AWS.md, "Sizing").
        self._reserved = settings.concurrency if settings.reserve_concurrency else {}

        # --- alarms --------------------------------------------------------------------
        self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=topic_key, enforce_ssl=True)
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self.dlq_alarms: dict[str, cloudwatch.Alarm] = {}

        # --- queues (visibility >= 6x the consumer's timeout, as AWS advises for SQS ESMs) --
        self.work_queue = self._queue("Work", self.sizes["dispatch"].timeout, max_receive=5)
        self.results_queue = self._queue("Results", self.sizes["collect"].timeout, max_receive=5)
        self.merge_queue = self._queue("Merge", self.sizes["merge"].timeout, max_receive=3)
        for topic in (endpoint.success_topic, endpoint.error_topic):
            # Raw delivery: the SQS body is SageMaker's notification JSON itself.
            topic.add_subscription(
                subscriptions.SqsSubscription(self.results_queue, raw_message_delivery=True)
            )

        env = {
            Env.INPUT_BUCKET: storage.input_bucket.bucket_name,
            Env.WORK_BUCKET: storage.work_bucket.bucket_name,
            Env.OUTPUT_BUCKET: storage.output_bucket.bucket_name,
            Env.JOB_TABLE: storage.job_table.table_name,
            Env.WORK_QUEUE_URL: self.work_queue.queue_url,
            Env.MERGE_QUEUE_URL: self.merge_queue.queue_url,
            Env.ENDPOINT_NAME: endpoint.endpoint_name,
            Env.MAX_CHUNK_ATTEMPTS: str(settings.max_chunk_attempts),
            Env.CHUNK_SECONDS: str(settings.chunk_seconds),
            Env.UPLOAD_PREFIX: UPLOAD_PREFIX,
            Env.INVOCATION_TIMEOUT_S: str(INFERENCE_TIMEOUT_S),
            Env.INSTANCE_TYPE: settings.instance_type,
            Env.MERGE_SCRATCH_MIB: str(self.sizes["merge"].ephemeral_mib),
            Env.LOG_LEVEL: settings.log_level,
            Env.POWERTOOLS_LOG_LEVEL: settings.log_level,
            # A plain upload gets the default model; split and fetch refuse what is not served.
            Env.DEFAULT_MODEL: settings.default_model,
            Env.DEFAULT_SCALE: str(settings.default_scale),
            Env.SERVED_MODELS: json.dumps(endpoint.manifest, separators=(",", ":")),
        }
        self.functions: dict[str, lambda_.DockerImageFunction] = {}
        self.roles: dict[str, iam.Role] = {}

        # --- fetch: URL -> input bucket (invoked asynchronously by `upscaler submit URL`) --
        # Its handler ends every failure as a FAILED job; a timeout would only repeat, so no
        # retries (the sweeper fails a job left FETCHING).
        fetch = self._function("fetch", env)
        fetch.configure_async_invoke(retry_attempts=0)
        skip(fetch, "CKV_AWS_116", DLQ_REASONS["async"])
        self._allow(
            "fetch",
            "WriteUploads",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [storage.input_bucket.arn_for_objects(f"{UPLOAD_PREFIX}*")],
        )
        self._allow_table("fetch", ["dynamodb:GetItem", "dynamodb:UpdateItem"])

        # --- split: S3 event -> chunks, job rows, work messages ---------------------------
        # Invoked asynchronously by S3: retried twice, then kept in a DLQ (alarmed).
        self.split_dlq = self._dlq("SplitFailures")
        split = self._function("split", env, dead_letter_queue=self.split_dlq)
        split.configure_async_invoke(retry_attempts=2, max_event_age=cdk.Duration.hours(6))
        storage.input_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(split),
            s3.NotificationKeyFilter(prefix=UPLOAD_PREFIX),
        )
        self._allow(
            "split",
            "ReadUploads",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [storage.input_bucket.arn_for_objects(f"{UPLOAD_PREFIX}*")],
        )
        self._allow(
            "split",
            "WriteChunks",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [storage.work_bucket.arn_for_objects(CHUNKS)],
        )
        self._allow_table("split", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"])
        self._allow("split", "SendWork", ["sqs:SendMessage"], [self.work_queue.queue_arn])

        # --- dispatch: work queue -> InvokeEndpointAsync ----------------------------------
        dispatch = self._function("dispatch", env)
        skip(dispatch, "CKV_AWS_116", DLQ_REASONS["sqs"])
        dispatch.add_event_source(
            sources.SqsEventSource(
                self.work_queue,
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(5),
                report_batch_item_failures=True,
                max_concurrency=settings.concurrency["dispatch"],
            )
        )
        self._allow(
            "dispatch",
            "WriteRequests",
            ["s3:PutObject"],
            [storage.work_bucket.arn_for_objects(REQUESTS)],
        )
        self._allow(
            "dispatch", "InvokeEndpoint", ["sagemaker:InvokeEndpointAsync"], [endpoint.endpoint_arn]
        )
        self._allow_table("dispatch", ["dynamodb:GetItem", "dynamodb:UpdateItem"])

        # --- collect: results queue -> chunk completion, retries, the merge message -------
        collect = self._function("collect", env)
        skip(collect, "CKV_AWS_116", DLQ_REASONS["sqs"])
        collect.add_event_source(
            sources.SqsEventSource(
                self.results_queue,
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(5),
                report_batch_item_failures=True,
                max_concurrency=settings.concurrency["collect"],
            )
        )
        self._allow(
            "collect",
            "ReadResultsAndFailures",
            ["s3:GetObject"],
            [
                storage.work_bucket.arn_for_objects(f"{RESULTS_PREFIX}*"),
                storage.work_bucket.arn_for_objects(f"{FAILURES_PREFIX}*"),
            ],
        )
        self._allow_table("collect", ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        self._allow(
            "collect",
            "SendMergeAndRetries",
            ["sqs:SendMessage"],
            [self.merge_queue.queue_arn, self.work_queue.queue_arn],
        )

        # --- merge: merge queue -> output bucket, job DONE/FAILED, clean the job prefix ----
        merge = self._function("merge", env)
        skip(merge, "CKV_AWS_116", DLQ_REASONS["sqs"])
        merge.add_event_source(
            sources.SqsEventSource(
                self.merge_queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=settings.concurrency["merge"],
            )
        )
        self._allow(
            "merge",
            "ReadAndCleanJobObjects",
            ["s3:GetObject", "s3:DeleteObject"],
            [storage.work_bucket.arn_for_objects(f"{JOBS_PREFIX}*")],
        )
        self._allow(
            "merge",
            "ListJobObjects",
            ["s3:ListBucket"],
            [storage.work_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{JOBS_PREFIX}*"]}},
        )
        self._allow(
            "merge",
            "ReadSource",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [storage.input_bucket.arn_for_objects(f"{UPLOAD_PREFIX}*")],
        )
        self._allow(
            "merge",
            "WriteOutput",
            ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            [
                storage.output_bucket.arn_for_objects(f"{OUTPUTS_PREFIX}*"),
                storage.output_bucket.arn_for_objects(f"{OUTPUT_TMP_PREFIX}*"),
            ],
        )
        # HeadObject of a missing output must answer 404 (not 403): that needs ListBucket.
        self._allow("merge", "ListOutput", ["s3:ListBucket"], [storage.output_bucket.bucket_arn])
        self._allow_table("merge", ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"])

        # --- sweep: every 15 min, jobs with no progress for STALE_AFTER_S -> FAILED ---------
        sweep = self._function("sweep", {**env, Env.STALE_AFTER_S: "7200"})
        skip(sweep, "CKV_AWS_116", DLQ_REASONS["schedule"])
        events.Rule(
            self,
            "SweepSchedule",
            schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
            targets=[targets.LambdaFunction(sweep, retry_attempts=0)],
        )
        self._allow_table("sweep", ["dynamodb:Scan", "dynamodb:UpdateItem"])

        self._acknowledge_notifications_handler()

    # ---------------------------------------------------------------------------------
    def _dlq(self, name: str) -> sqs.Queue:
        dlq = sqs.Queue(
            self,
            f"{name}DLQ",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        alarm = cloudwatch.Alarm(
            self,
            f"{name}DLQNotEmpty",
            alarm_description=f"Messages in the {name} dead-letter queue: inspect and redrive",
            metric=dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        self.dlq_alarms[name] = alarm
        return dlq

    def _queue(self, name: str, consumer_timeout: cdk.Duration, max_receive: int) -> sqs.Queue:
        dlq = self._dlq(name)
        return sqs.Queue(
            self,
            f"{name}Queue",
            visibility_timeout=cdk.Duration.seconds(6 * consumer_timeout.to_seconds()),
            retention_period=cdk.Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive),
        )

    def _function(
        self,
        name: str,
        env: dict[str, str],
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.DockerImageFunction:
        size = self.sizes[name]
        title = name.capitalize()
        log_group = logs.LogGroup(
            self,
            f"{title}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{title}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Upscaler {name} Lambda (least privilege; see stacks/pipeline.py)",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.DockerImageFunction(
            self,
            title,
            description=f"Upscaler pipeline: {name}",
            code=lambda_.DockerImageCode.from_image_asset(
                directory=str(REPO_ROOT),
                file=DOCKERFILE,
                cmd=[f"lambdas.{name}.handler"],
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            architecture=lambda_.Architecture.X86_64,
            memory_size=size.memory_mb,
            timeout=size.timeout,
            ephemeral_storage_size=cdk.Size.mebibytes(size.ephemeral_mib),
            environment={**env, Env.POWERTOOLS_SERVICE_NAME: f"upscaler-{name}"},
            role=role,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
            reserved_concurrent_executions=self._reserved.get(name),
        )
        self.functions[name] = function
        self.roles[name] = role
        return function

    def _allow(
        self,
        name: str,
        sid: str,
        actions: list[str],
        resources: list[str],
        conditions: dict | None = None,
    ) -> None:
        """Add one statement to `name`'s role; object-key wildcards are acknowledged here."""
        statement = iam.PolicyStatement(
            sid=sid, actions=actions, resources=resources, conditions=conditions
        )
        self.roles[name].add_to_policy(statement)
        policy = self.roles[name].node.find_child("DefaultPolicy")
        wildcards = [r for r in resources if "*" in rendered(self, r)]
        acknowledge_resources(
            policy,
            wildcards,
            f"The {name} function handles objects whose keys are per job; its access is limited "
            "to one bucket and the fixed key prefix the pipeline layout assigns to it.",
        )

    def _allow_table(self, name: str, actions: list[str]) -> None:
        self._allow(name, "JobTable", actions, [self._storage.job_table.table_arn])

    def _acknowledge_notifications_handler(self) -> None:
        """CDK's singleton handler that installs the S3 -> split notification configuration."""
        handler = self._stack.node.try_find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        if handler is None:
            return
        acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's built-in BucketNotificationsHandler (a deploy-time custom resource) writes its "
            "logs with the AWS basic execution policy; its role is not configurable.",
        )
