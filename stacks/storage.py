"""Storage: the input, work and output buckets, their access-log bucket and the job table.

The object layout and the table's key names are the cloud contract's
(`upscaler/cloud_contract.py`), which the handlers read too.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.checkov import skip
from stacks.config import Settings
from upscaler.cloud_contract import (
    FAILURES_PREFIX,
    JOBS_PREFIX,
    OUTPUT_TMP_PREFIX,
    PARTITION_KEY,
    RESULTS_PREFIX,
    SORT_KEY,
)


def _bucket(scope: Construct, cid: str, **kwargs) -> s3.Bucket:
    """A private, encrypted, TLS-only bucket (the settings every bucket here shares)."""
    return s3.Bucket(
        scope,
        cid,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        **kwargs,
    )


class Storage(Construct):
    """Buckets and the job table; the pipeline and endpoint constructs grant on them."""

    def __init__(self, scope: Construct, cid: str, *, settings: Settings) -> None:
        super().__init__(scope, cid)
        abort_uploads = s3.LifecycleRule(
            id="AbortIncompleteUploads",
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        )

        self.log_bucket = _bucket(
            self,
            "AccessLogs",
            # S3 log delivery is granted by a bucket policy (no ACLs: ownership is enforced).
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(id="ExpireLogs", expiration=cdk.Duration.days(90)),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # No AwsSolutions-S1 finding here: cdk-nag accepts a bucket that is itself the
        # server-access-log destination of other buckets.
        skip(
            self.log_bucket,
            "CKV_AWS_18",
            "This bucket is the server access log destination of the others; logging it into "
            "itself would log its own log deliveries without end.",
        )
        skip(
            self.log_bucket,
            "CKV_AWS_21",
            "Access logs are written once by the S3 logging service and expire after 90 days; "
            "versions would only keep expired logs.",
        )

        # Uploads: versioned (an overwritten upload stays recoverable), old versions expire.
        self.input_bucket = _bucket(
            self,
            "Input",
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="input/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="ExpireOldVersions", noncurrent_version_expiration=cdk.Duration.days(30)
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Intermediates only: not versioned (a deleted chunk must really go), everything expires.
        self.work_bucket = _bucket(
            self,
            "Work",
            versioned=False,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="work/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="ExpireJobObjects",
                    prefix=JOBS_PREFIX,
                    expiration=cdk.Duration.days(settings.work_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireResults",
                    prefix=RESULTS_PREFIX,
                    expiration=cdk.Duration.days(settings.work_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireFailures",
                    prefix=FAILURES_PREFIX,
                    expiration=cdk.Duration.days(settings.work_expiry_days),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        skip(
            self.work_bucket,
            "CKV_AWS_21",
            "Intermediates only (chunks, requests, results): a deleted object must really be "
            "gone, and everything expires after work_expiry_days.",
        )
        # Deliverables: versioned (merge replaces keys; a bad re-run never destroys a result).
        self.output_bucket = _bucket(
            self,
            "Output",
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="output/",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="ExpireOldVersions", noncurrent_version_expiration=cdk.Duration.days(30)
                ),
                # Merge uploads under tmp/ then copies to the final key; crashes leave debris.
                s3.LifecycleRule(
                    id="ExpireTemporary",
                    prefix=OUTPUT_TMP_PREFIX,
                    expiration=cdk.Duration.days(2),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # One table: pk job_id (S), sk item (S) = "JOB" for the job row, "CHUNK#00001" per chunk.
        self.job_table = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        skip(
            self.job_table,
            "CKV_AWS_119",
            "Encrypted at rest with the AWS-managed key; rows hold job state (ids, S3 keys, "
            "counts). A customer-managed key would not change who may read the table.",
        )
