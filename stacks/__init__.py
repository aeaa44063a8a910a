"""CDK infrastructure of the Upscaler AWS pipeline (see docs/AWS.md).

`create_app()` is used by app.py (`npx cdk synth/deploy`) and by tests/aws/test_stacks.py.
"""

from __future__ import annotations

import os

# jsii (the bridge to the CDK's JavaScript) warns loudly on Node 20; the value is the version.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.config import DEFAULTS, Settings
from stacks.upscaler_stack import UpscalerStack

__all__ = ["DEFAULTS", "FEATURE_FLAGS", "Settings", "UpscalerStack", "create_app"]

# CDK feature flags this app relies on (set here so tests and the CLI agree).
FEATURE_FLAGS = {
    # Server access logs are granted to the S3 logging service by bucket policy, not ACLs.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:enablePartitionLiterals": True,
}


def create_app(
    context: dict | None = None, outdir: str | None = None
) -> tuple[cdk.App, UpscalerStack]:
    """The CDK app with the Upscaler stack and cdk-nag AwsSolutions checks (validation plugin).

    Synthesis fails on any unacknowledged AwsSolutions finding; the report is written to
    `<outdir>/validation-report.json`.
    """
    app = cdk.App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    settings = Settings.from_node(app.node)
    stack = UpscalerStack(
        app,
        settings.stack_name,
        settings=settings,
        env=cdk.Environment(account=settings.account, region=settings.region),
        description="AI video upscaler: serverless pipeline and SageMaker async endpoint",
    )
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )
    return app, stack
