"""Endpoint: the SageMaker asynchronous inference endpoint that upscales one chunk per request.

Model (PyTorch inference container + model.tar.gz with the weights and code/inference.py),
endpoint config with async inference (output/failure paths in the work bucket, SNS success and
error topics), the endpoint, and Application Auto Scaling from 0 to `max_instances` on backlog.

The model artifact is built from this repository at synth time (`upscaler.package`: every
shipped model and its manifest) and published as a CDK file asset, so one `cdk deploy` gives a
serving endpoint; `-c model_data_uri=s3://...` (with `-c served_models=...`) serves one's own.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.checkov import skip
from stacks.config import Settings
from stacks.nag import acknowledge_resources
from stacks.sagemaker_access import add_runtime_access, image_repository_arn
from upscaler.cloud_contract import (
    CHUNKS,
    FAILURES_PREFIX,
    REQUESTS,
    RESULTS_PREFIX,
    UPSCALED,
    Env,
)

VARIANT = "AllTraffic"
# One chunk may take minutes on the GPU: the model server must not time out before the
# invocation does (dispatch passes the same value as InvocationTimeoutSeconds).
INFERENCE_TIMEOUT_S = 900


def build_artifact() -> tuple[Path, dict[str, list[int]]]:
    """model.tar.gz of every shipped model, in a temporary directory removed at exit (the
    synth copies it into the cloud assembly), and its manifest."""
    from upscaler.package import manifest_of, package, shipped  # torch: only when building

    served = shipped()
    folder = Path(tempfile.mkdtemp(prefix="upscaler-model-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return package(served, folder / "model.tar.gz"), manifest_of(served)


class Endpoint(Construct):
    """The async endpoint, its execution role (least privilege), topics and autoscaling."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: Settings,
        work_bucket: s3.IBucket,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, cid)
        stack = cdk.Stack.of(self)
        self.endpoint_name = settings.endpoint_name
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name
        )

        # SageMaker publishes one notification per finished invocation; both feed the results
        # queue (subscribed in the pipeline construct). KMS-encrypted, TLS-only.
        self.success_topic = sns.Topic(self, "SuccessTopic", master_key=topic_key, enforce_ssl=True)
        self.error_topic = sns.Topic(self, "ErrorTopic", master_key=topic_key, enforce_ssl=True)

        # --- model artifact and container -------------------------------------------------
        location = settings.model_data_location()
        if location:
            model_data_url = settings.model_data_uri
            bucket, key = location
            self.manifest = settings.own_manifest()
        else:
            path, self.manifest = build_artifact()
            self.asset = s3_assets.Asset(self, "ModelArtifact", path=str(path))
            model_data_url = self.asset.s3_object_url
            bucket, key = self.asset.s3_bucket_name, self.asset.s3_object_key
        model_data_arn = stack.format_arn(
            service="s3", region="", account="", resource=bucket, resource_name=key
        )
        if settings.default_scale not in self.manifest.get(settings.default_model, ()):
            served = ", ".join(f"{n} x{s}" for n, s in self.manifest.items())
            raise ValueError(
                f"invalid context parameters: default_model {settings.default_model} "
                f"x{settings.default_scale} is not served (served: {served})"
            )
        self.model_data_url = model_data_url
        self.image_uri = settings.image_uri()

        # --- execution role ---------------------------------------------------------------
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Upscaler async endpoint: model data, chunk I/O, notifications, logs",
        )
        read_work = [work_bucket.arn_for_objects(p) for p in (REQUESTS, CHUNKS, UPSCALED)]
        write_work = [
            work_bucket.arn_for_objects(p)
            for p in (UPSCALED, f"{RESULTS_PREFIX}*", f"{FAILURES_PREFIX}*")
        ]
        policy = iam.Policy(
            self,
            "ExecutionPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadModelData", actions=["s3:GetObject"], resources=[model_data_arn]
                ),
                iam.PolicyStatement(
                    sid="ReadRequestsAndChunks",
                    actions=["s3:GetObject"],
                    resources=read_work,
                ),
                iam.PolicyStatement(
                    sid="WriteUpscaledResultsFailures",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=write_work,
                ),
                iam.PolicyStatement(
                    sid="Notify",
                    actions=["sns:Publish"],
                    resources=[self.success_topic.topic_arn, self.error_topic.topic_arn],
                ),
                iam.PolicyStatement(
                    sid="EncryptNotifications",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[topic_key.key_arn],
                ),
            ],
        )
        add_runtime_access(
            policy,
            f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
            image_repository_arn(stack, self.image_uri),
        )
        acknowledge_resources(
            policy,
            list(dict.fromkeys(read_work + write_work)),
            "Object keys under these work-bucket prefixes are per job and per invocation; the "
            "prefix is the narrowest static scope of the endpoint's chunk input and output.",
        )

        # --- model, endpoint config, endpoint ----------------------------------------------
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image_uri,
                model_data_url=model_data_url,
                environment={
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    "SAGEMAKER_REGION": stack.region,
                    # One model copy per GPU; async requests queue in front of it.
                    "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                    "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(INFERENCE_TIMEOUT_S),
                    "TS_DEFAULT_RESPONSE_TIMEOUT": str(INFERENCE_TIMEOUT_S),
                    # sagemaker/inference.py reads and writes chunks only in these buckets.
                    Env.ALLOWED_BUCKETS: work_bucket.bucket_name,
                    # What a request that names no model gets.
                    "UPSCALER_MODEL": settings.default_model,
                    "UPSCALER_SCALE": str(settings.default_scale),
                },
            ),
        )
        # SageMaker checks the role's access when it creates the model.
        model.node.add_dependency(policy)
        skip(
            model,
            "CKV_AWS_370",
            "The container reads chunks from and writes results to S3 itself and installs "
            "code/requirements.txt at start-up; network isolation would cut off both.",
        )
        self.model = model

        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    instance_type=settings.instance_type,
                    # CreateEndpoint needs >= 1; autoscaling takes it to 0 once idle.
                    initial_instance_count=1,
                    initial_variant_weight=1.0,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"s3://{work_bucket.bucket_name}/{RESULTS_PREFIX}",
                    s3_failure_path=f"s3://{work_bucket.bucket_name}/{FAILURES_PREFIX}",
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=self.success_topic.topic_arn,
                        error_topic=self.error_topic.topic_arn,
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=settings.max_concurrent_invocations
                ),
            ),
        )
        # No KmsKeyId for the instance storage volume: GPU types with local NVMe storage
        # (g4dn, g5) reject it. Chunks at rest live in the SSE-S3 work bucket.
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )

        self._autoscaling(settings, stack)

    def _autoscaling(self, settings: Settings, stack: cdk.Stack) -> None:
        """Target tracking on backlog per instance (scales in to 0) + step scaling from 0."""
        scaling_role = iam.Role.from_role_arn(
            self,
            "ScalingRole",
            stack.format_arn(
                service="iam",
                region="",
                resource="role",
                resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
            ),
            mutable=False,
        )
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint.attr_endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=0,
            max_capacity=settings.max_instances,
            role=scaling_role,
        )

        def metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map={"EndpointName": self.endpoint_name},
                statistic="Average",
                period=cdk.Duration.minutes(1),
            )

        self.scalable_target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=settings.backlog_per_instance,
            custom_metric=metric("ApproximateBacklogSizePerInstance"),
            scale_in_cooldown=cdk.Duration.minutes(10),
            scale_out_cooldown=cdk.Duration.minutes(2),
        )
        # Target tracking cannot leave 0 instances (a per-instance metric has no instance);
        # this alarm adds the first one when requests wait with no capacity.
        scale_out = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=self.scalable_target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=cdk.Duration.minutes(5),
        )
        scale_out.add_adjustment(adjustment=1, lower_bound=0)
        self.backlog_alarm = cloudwatch.Alarm(
            self,
            "HasBacklogWithoutCapacity",
            alarm_description="Requests are queued and the endpoint has no instance",
            metric=metric("HasBacklogWithoutCapacity"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_out))
