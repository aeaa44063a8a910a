"""Training: the execution role SageMaker assumes for a training job from notebooks/train.ipynb.

Least privilege, in the work bucket only:

    training/*          read (the training data: shards from the dataset Lambda, or uploads)
    training/jobs/*     write (the job's model.tar.gz, output and checkpoints)

plus the job's own CloudWatch logs and metrics and pulling the training image from the Deep
Learning Containers registry. The stack outputs the role ARN and both URIs; the notebook reads
them from there.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import dlc_account
from stacks.dataset import SHARDS_PREFIX as DATA_PREFIX  # the dataset Lambda's output
from stacks.nag import acknowledge_resources
from stacks.sagemaker_access import add_runtime_access, image_repository_arn

TRAINING_PREFIX = "training/"
JOBS_PREFIX = "training/jobs/"
#: The Deep Learning Containers registry (763104351884 in most regions; see stacks/config.py).
TRAINING_REPOSITORY = "pytorch-training"


class TrainingRole(Construct):
    """The role, and the data/output URIs the notebook uses with it."""

    def __init__(self, scope: Construct, cid: str, *, work_bucket: s3.IBucket, region: str) -> None:
        super().__init__(scope, cid)
        stack = cdk.Stack.of(self)
        self.data_uri = f"s3://{work_bucket.bucket_name}/{DATA_PREFIX}"
        self.output_uri = f"s3://{work_bucket.bucket_name}/{JOBS_PREFIX}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Upscaler training jobs: read training/, write training/jobs/, logs",
        )
        training = work_bucket.arn_for_objects(f"{TRAINING_PREFIX}*")
        jobs = work_bucket.arn_for_objects(f"{JOBS_PREFIX}*")
        policy = iam.Policy(
            self,
            "Policy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="ReadTrainingData", actions=["s3:GetObject"], resources=[training]
                ),
                iam.PolicyStatement(
                    sid="ListTrainingData",
                    actions=["s3:ListBucket"],
                    resources=[work_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{TRAINING_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    sid="WriteOutputAndCheckpoints",
                    actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[jobs],
                ),
            ],
        )
        repository = f"{dlc_account(region)}.dkr.ecr.{region}.amazonaws.com/{TRAINING_REPOSITORY}"
        add_runtime_access(
            policy, "/aws/sagemaker/TrainingJobs", image_repository_arn(stack, repository)
        )
        acknowledge_resources(
            policy,
            [training, jobs],
            "Training data and job outputs are keyed per dataset and per job run; access is "
            "limited to the work bucket's training/ prefix (writes to training/jobs/).",
        )
