"""The Upscaler stack: storage, the async endpoint and the Lambda pipeline, in one stack.

One stack, three constructs: the S3 notification (input bucket -> split Lambda), the SNS
subscriptions (endpoint topics -> results queue) and the grants cross all three, and splitting
them into stacks would create cyclic cross-stack references (and exports that block updates).
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.checkov import CheckovSkips
from stacks.config import Settings
from stacks.dataset import DatasetBuilder
from stacks.endpoint import Endpoint
from stacks.pipeline import REPO_ROOT, Pipeline
from stacks.storage import Storage
from stacks.training import TrainingRole
from upscaler.cloud_contract import UPLOAD_PREFIX, Output


class UpscalerStack(cdk.Stack):
    def __init__(self, scope: Construct, cid: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        self.settings = settings

        # One customer-managed key for the SNS topics: CloudWatch alarms and SageMaker can only
        # publish to encrypted topics whose key they may use (the AWS-managed key forbids it).
        self.topic_key = kms.Key(
            self,
            "TopicKey",
            description="Upscaler SNS topics (endpoint notifications, alarms)",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

        self.storage = Storage(self, "Storage", settings=settings)
        self.endpoint = Endpoint(
            self,
            "Inference",
            settings=settings,
            work_bucket=self.storage.work_bucket,
            topic_key=self.topic_key,
        )
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            settings=settings,
            storage=self.storage,
            endpoint=self.endpoint,
            topic_key=self.topic_key,
        )
        # Training data from real video: training/raw/* -> shards under training/shards/.
        self.dataset = DatasetBuilder(
            self,
            "Dataset",
            work_bucket=self.storage.work_bucket,
            repo_root=str(REPO_ROOT),
            alarm_topic=self.pipeline.alarm_topic,
            memory_mb=settings.media_memory_mb,
            log_level=settings.log_level,
            concurrency=settings.concurrency["dataset"],
            reserve_concurrency=settings.reserve_concurrency,
        )
        # Training from the notebook: a role SageMaker assumes to read the training data and
        # write the job's output and checkpoints.
        self.training = TrainingRole(
            self, "Training", work_bucket=self.storage.work_bucket, region=settings.region
        )

        # Names the CLI (`upscaler submit/status --stack NAME`) reads from the stack outputs.
        outputs = {
            Output.INPUT_BUCKET: self.storage.input_bucket.bucket_name,
            Output.UPLOAD_PREFIX: UPLOAD_PREFIX,
            Output.WORK_BUCKET: self.storage.work_bucket.bucket_name,
            Output.OUTPUT_BUCKET: self.storage.output_bucket.bucket_name,
            Output.JOB_TABLE: self.storage.job_table.table_name,
            Output.FETCH_FUNCTION: self.pipeline.functions["fetch"].function_name,
            "EndpointName": self.endpoint.endpoint_name,
            "ModelDataUrl": self.endpoint.model_data_url,
            "InferenceImageUri": self.endpoint.image_uri,
            "WorkQueueUrl": self.pipeline.work_queue.queue_url,
            "AlarmTopicArn": self.pipeline.alarm_topic.topic_arn,
            "DatasetQueueUrl": self.dataset.queue.queue_url,
            # What the endpoint serves ({model: [scales]}); `upscaler submit` checks against it.
            Output.SERVED_MODELS: json.dumps(self.endpoint.manifest, separators=(",", ":")),
            Output.DEFAULT_MODEL: settings.default_model,
            Output.DEFAULT_SCALE: str(settings.default_scale),
            "TrainingRoleArn": self.training.role.role_arn,
            "TrainingDataUri": self.training.data_uri,
            "TrainingOutputUri": self.training.output_uri,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
        cdk.Aspects.of(self).add(CheckovSkips())
