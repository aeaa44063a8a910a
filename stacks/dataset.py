"""Training data: raw videos in the work bucket -> patch shards, by the `dataset` Lambda.

    work bucket training/raw/<video> --S3 event--> dataset queue (+DLQ, alarm)
        --> dataset Lambda (same container image, `lambdas.dataset.handler`)
        --> work bucket training/shards/<name>/<build>/shard-*.npy, then .../manifest.json

The training job reads `training/shards/` as its training channel. The function's role holds
exactly: read `training/raw/*`, write/read/delete `training/shards/*` (it replaces its own
earlier build and reads nothing else), list the bucket under `training/shards/` only, and
write its own log group. The queue is SQS-managed SSE (S3 notifications can deliver to it)
and TLS-only; its DLQ has an alarm on depth.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.checkov import DLQ_REASONS, skip
from stacks.nag import acknowledge, acknowledge_resources
from upscaler.cloud_contract import Env

RAW_PREFIX = "training/raw/"
SHARDS_PREFIX = "training/shards/"
DOCKERFILE = "lambdas/Dockerfile"


class DatasetBuilder(Construct):
    """The dataset queue, DLQ + alarm, the S3 trigger and the dataset function."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        work_bucket: s3.IBucket,
        repo_root: str,
        alarm_topic: sns.ITopic | None = None,
        memory_mb: int = 3008,
        timeout: cdk.Duration | None = None,
        log_level: str = "INFO",
        max_patches: int = 20000,
        concurrency: int = 2,
        reserve_concurrency: bool = True,
    ) -> None:
        super().__init__(scope, cid)
        timeout = timeout or cdk.Duration.minutes(15)

        self.dlq = sqs.Queue(
            self,
            "DLQ",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DLQNotEmpty",
            alarm_description="Raw training videos the dataset Lambda could not turn into shards: "
            "see its logs ('dataset build failed') for the reason",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if alarm_topic is not None:
            self.alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
        # Visibility >= 6x the function timeout (AWS's advice for SQS event sources). A bad
        # source fails the same way every time: two receives, then the DLQ.
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(6 * timeout.to_seconds()),
            retention_period=cdk.Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=2),
        )
        work_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=RAW_PREFIX),
        )

        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Upscaler dataset Lambda (least privilege; see stacks/dataset.py)",
        )
        raw = work_bucket.arn_for_objects(f"{RAW_PREFIX}*")
        shards = work_bucket.arn_for_objects(f"{SHARDS_PREFIX}*")
        statements = [
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(sid="ReadRawVideos", actions=["s3:GetObject"], resources=[raw]),
            iam.PolicyStatement(
                sid="WriteShards",
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                resources=[shards],
            ),
            iam.PolicyStatement(
                sid="ListShards",
                actions=["s3:ListBucket"],
                resources=[work_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{SHARDS_PREFIX}*"]}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)

        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description="Upscaler training data: raw video -> patch shards",
            code=lambda_.DockerImageCode.from_image_asset(
                directory=repo_root,
                file=DOCKERFILE,
                cmd=["lambdas.dataset.handler"],
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            architecture=lambda_.Architecture.X86_64,
            memory_size=memory_mb,
            timeout=timeout,
            # The source video and its shards live on /tmp while the build runs.
            ephemeral_storage_size=cdk.Size.mebibytes(10240),
            environment={
                Env.WORK_BUCKET: work_bucket.bucket_name,
                Env.DATASET_MAX_PATCHES: str(max_patches),
                Env.LOG_LEVEL: log_level,
                Env.POWERTOOLS_LOG_LEVEL: log_level,
                Env.POWERTOOLS_SERVICE_NAME: "upscaler-dataset",
            },
            role=self.role,
            log_group=log_group,
            reserved_concurrent_executions=concurrency if reserve_concurrency else None,
        )
        skip(self.function, "CKV_AWS_116", DLQ_REASONS["sqs"])
        # One video per invocation: a build is minutes of CPU, batching would only risk timeouts.
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=concurrency,
            )
        )

        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_resources(
            policy,
            [raw, shards],
            "The dataset function reads any raw training video and writes per-video shard "
            "directories; keys are user-chosen, so access is limited to one bucket and the "
            "training/raw/ and training/shards/ prefixes.",
        )
        handler = cdk.Stack.of(self).node.try_find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        if handler is not None:
            acknowledge(
                handler,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's built-in BucketNotificationsHandler (a deploy-time custom resource) writes "
                "its logs with the AWS basic execution policy; its role is not configurable.",
            )
