"""`upscaler submit` / `upscaler status` against moto, and the core staying free of boto3."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from upscaler.cli import main

TEMPLATE = {
    "Resources": {"In": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "in-bkt"}}},
    "Outputs": {
        "InputBucketName": {"Value": "in-bkt"},
        "UploadPrefix": {"Value": "uploads/"},
        "JobTableName": {"Value": "jobs"},
        "FetchFunctionName": {"Value": "fetch-fn"},
        "ServedModels": {"Value": '{"bicubic":[2,3,4],"esrgan-lite":[4],"fast":[2]}'},
    },
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("cloudformation").create_stack(
            StackName="Upscaler", TemplateBody=json.dumps(TEMPLATE)
        )
        boto3.client("dynamodb").create_table(
            TableName="jobs",
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
        yield


def test_submit_uploads_with_settings_from_stack_outputs(aws, basic_clip, capsys):
    assert main(["submit", str(basic_clip), "--model", "bicubic", "--scale", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    key = f"uploads/{result['job_id']}/basic.mp4"
    assert result["source"] == f"s3://in-bkt/{key}"
    head = boto3.client("s3").head_object(Bucket="in-bkt", Key=key)
    assert head["Metadata"] == {"model": "bicubic", "scale": "4", "crf": "18"}
    assert head["ContentLength"] == basic_clip.stat().st_size


def test_submit_refuses_a_model_the_stack_does_not_serve(aws, basic_clip, capsys):
    assert main(["submit", str(basic_clip), "--model", "esrgan-lite", "--scale", "2"]) == 2
    error = capsys.readouterr().err
    assert (
        "does not serve esrgan-lite x2; it serves: bicubic x2/x3/x4, esrgan-lite x4, fast x2"
        in error
    )
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket="in-bkt")


def test_status_reads_the_job_row(aws, capsys):
    table = boto3.resource("dynamodb").Table("jobs")
    table.put_item(
        Item={"job_id": "j1", "item": "JOB", "status": "RUNNING", "chunks": 4, "done": {1, 3}}
    )
    assert main(["status", "j1"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row == {"job_id": "j1", "status": "RUNNING", "chunks": 4, "chunks_done": 2}
    assert main(["status", "nope"]) == 2
    assert "no job 'nope'" in capsys.readouterr().err


def test_submit_missing_file_is_a_clear_error(aws, capsys):
    assert main(["submit", "/no/such/file.mp4"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_core_library_imports_no_aws_sdk():
    code = (
        "import sys, upscaler.cli, upscaler.engine.video, upscaler.media.merge, "
        "upscaler.train.loop, upscaler.package, upscaler.cost\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
