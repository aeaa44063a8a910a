"""What every SageMaker execution role here needs to run a container: its own CloudWatch log
group, pulling its image from one repository, and the two actions that take no resource."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from stacks.nag import acknowledge_resources


def image_repository_arn(stack: cdk.Stack, image_uri: str) -> str:
    """The ECR repository ARN of `<account>.dkr.ecr.<region>.amazonaws.com/<name>:<tag>`."""
    registry, _, repository = image_uri.partition("/")
    return stack.format_arn(
        service="ecr",
        account=registry.split(".")[0],
        resource="repository",
        resource_name=repository.split(":")[0].split("@")[0],
    )


def add_runtime_access(policy: iam.Policy, log_group_name: str, repository_arn: str) -> None:
    """Logs of `log_group_name` (e.g. /aws/sagemaker/TrainingJobs), image pulls from
    `repository_arn`, ECR login and CloudWatch metrics."""
    stack = cdk.Stack.of(policy)
    log_group = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    log_streams = f"{log_group}:log-stream:*"
    policy.add_statements(
        iam.PolicyStatement(
            sid="Logs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            resources=[log_group, log_streams],
        ),
        iam.PolicyStatement(
            sid="PullImage",
            actions=[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            resources=[repository_arn],
        ),
        iam.PolicyStatement(
            sid="EcrLoginAndMetrics",
            actions=["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
            resources=["*"],
        ),
    )
    acknowledge_resources(
        policy,
        ["*"],
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
        "permissions; image pulls themselves are limited to one repository.",
    )
    acknowledge_resources(
        policy,
        [log_streams],
        "SageMaker names the log streams per instance or job; access is limited to the "
        "streams of the role's own log group.",
    )
