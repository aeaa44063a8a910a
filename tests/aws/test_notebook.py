"""notebooks/train.ipynb runs top to bottom against a moto server (dry-run mode), reading the
stack's outputs, with the SageMaker SDK's role validation on.

The stack is the synthesized template's training role, its policy and the work bucket, created
by moto's CloudFormation; the notebook runs as a moto IAM user, and moto authenticates and
authorizes every call against that user's policy. The user may do everything except simulate
IAM policies (as many real callers): the SDK then checks the role's trust policy for real
(`sagemaker.amazonaws.com` must be trusted, or `RoleValidationError`) and reports its
permissions as unverifiable, which moto cannot simulate anyway.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import boto3
import nbformat
import numpy as np
import pytest
import requests
from moto.server import ThreadedMotoServer
from nbclient import NotebookClient

from stacks.synth import cached

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
STACK = "Upscaler"
OUTPUTS = ("WorkBucketName", "TrainingRoleArn", "TrainingDataUri", "TrainingOutputUri")
NOTEBOOK_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:SimulatePrincipalPolicy", "Resource": "*"},
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def training_stack(template: dict[str, Any]) -> dict[str, Any]:
    """The synthesized template's training role with its policies, the work bucket (without the
    properties that tie it to the rest of the stack) and the outputs the notebook reads."""
    resources = template["Resources"]
    role = template["Outputs"]["TrainingRoleArn"]["Value"]["Fn::GetAtt"][0]
    bucket = template["Outputs"]["WorkBucketName"]["Value"]["Ref"]
    policies = {
        key: r
        for key, r in resources.items()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    }
    return {
        "Resources": {bucket: {"Type": "AWS::S3::Bucket"}, role: resources[role], **policies},
        "Outputs": {name: template["Outputs"][name] for name in OUTPUTS},
    }


@pytest.fixture
def moto_env(monkeypatch, tmp_path):
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "UPSCALER_STACK": STACK,
        "UPSCALER_NOTEBOOK_DRY_RUN": "1",
        "UPSCALER_DATA_DIR": str(tmp_path / "data"),
        "UPSCALER_HYPERPARAMETERS": json.dumps(
            {"steps": 4, "batch-size": 2, "crop": 48, "val-every": 2, "log-every": 2}
            | {"warmup": 1, "threads": 1, "model-config": {"width": 8, "depth": 1}}
        ),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_SESSION_TOKEN", "SAGEMAKER_VALIDATE_ROLE"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "data").mkdir()
    patches = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 3), dtype=np.uint8)
    np.save(tmp_path / "data" / "train_hr.npy", patches)
    np.save(tmp_path / "data" / "dev_hr.npy", patches[:1])

    template = training_stack(cached().template)
    boto3.client("cloudformation").create_stack(
        StackName=STACK, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )
    iam = boto3.client("iam")
    iam.create_user(UserName="notebook")
    iam.put_user_policy(
        UserName="notebook",
        PolicyName="all-but-simulate",
        PolicyDocument=json.dumps(NOTEBOOK_USER_POLICY),
    )
    key = iam.create_access_key(UserName="notebook")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)  # IAM enforced
    try:
        # A new session: boto3's default one keeps the credentials it first resolved.
        yield boto3.Session()
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
        # The in-thread server shares moto's global backends: leave none of this test's state.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


@pytest.mark.slow
def test_train_notebook_runs_against_moto_with_role_validation(moto_env):
    stack = moto_env.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["TrainingRoleArn"].startswith("arn:aws:iam::123456789012:role/")
    nb = nbformat.read(NOTEBOOKS / "train.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    bucket = outputs["WorkBucketName"]
    keys = [o["Key"] for o in moto_env.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("training/data/") and k.endswith("/train_hr.npy") for k in keys)
    jobs = [k for k in keys if k.startswith("training/jobs/")]
    assert any(k.endswith("/output/model.tar.gz") for k in jobs), keys
    assert any("/code/" in k or "sourcecode" in k for k in jobs), keys  # uploaded by dry_run
    out = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "step=4 loss=" in out
    assert f"-c model_data_uri=s3://{bucket}/training/jobs/" in out
    assert "-c served_models='{\"fast\":[2]}' -c default_model=fast -c default_scale=2" in out


def test_sdk_role_validation_accepts_the_stack_role_and_refuses_an_untrusting_one(moto_env):
    """What ModelTrainer does with its role, on the same moto account: the template's role
    passes; a role SageMaker may not assume is refused before any job starts."""
    from sagemaker.core.helper.iam_role_resolver import (
        RoleValidationError,
        resolve_and_validate_role,
    )
    from sagemaker.core.helper.session_helper import Session

    session = Session(boto_session=moto_env)
    stack = moto_env.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    role = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "TrainingRoleArn")
    assert resolve_and_validate_role(role, "training", session) == role
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    other = moto_env.client("iam").create_role(
        RoleName="not-for-sagemaker", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    with pytest.raises(RoleValidationError, match=r"does not allow 'sagemaker\.amazonaws\.com'"):
        resolve_and_validate_role(other, "training", session)
