"""`upscaler submit` / `upscaler status` against moto, and the core staying free of boto3."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import zipfile

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
        "ServedModels": {"Value": '{"bicubic": [2, 4], "fast": [2]}'},
        "DefaultModel": {"Value": "bicubic"},
        "DefaultScale": {"Value": "4"},
    },
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(config={"lambda": {"use_docker": False}}):  # invocations are not run
        role = boto3.client("iam").create_role(
            RoleName="fetch-role", AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]["Arn"]
        boto3.client("lambda").create_function(
            FunctionName="fetch-fn",
            Runtime="python3.12",
            Role=role,
            Handler="lambdas.fetch.handler",
            Code={"ZipFile": _zip()},
        )
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
    args = ["--model", "bicubic", "--scale", "4", "--deinterlace", "field", "--square-pixels"]
    assert main(["submit", str(basic_clip), *args]) == 0
    result = json.loads(capsys.readouterr().out)
    key = f"uploads/{result['job_id']}/basic.mp4"
    assert result["source"] == f"s3://in-bkt/{key}"
    head = boto3.client("s3").head_object(Bucket="in-bkt", Key=key)
    picture = {"deinterlace": "field", "square-pixels": "true"}
    assert head["Metadata"] == {"model": "bicubic", "scale": "4", "crf": "18", **picture}
    assert head["ContentLength"] == basic_clip.stat().st_size


def test_a_plain_submit_asks_for_the_stacks_default_model(aws, basic_clip, capsys):
    assert main(["submit", str(basic_clip)]) == 0
    result = json.loads(capsys.readouterr().out)
    key = result["source"].removeprefix("s3://in-bkt/")
    head = boto3.client("s3").head_object(Bucket="in-bkt", Key=key)
    picture = {"deinterlace": "auto", "square-pixels": "false"}
    assert head["Metadata"] == {"model": "bicubic", "scale": "4", "crf": "18", **picture}


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


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_submit_url_returns_at_once_with_the_job_fetching(aws, capsys):
    assert main(["submit", "https://example.com/v/clip.mp4", "--model", "bicubic"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "FETCHING"
    assert main(["status", result["job_id"]]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "FETCHING" and row["source_url"] == "https://example.com/v/clip.mp4"


def test_submit_refuses_what_the_endpoint_does_not_serve_before_uploading(aws, basic_clip, capsys):
    assert main(["submit", str(basic_clip), "--model", "fast", "--scale", "4"]) == 2
    assert "fast x4 is not served by this endpoint; it serves bicubic x2/x4, fast x2" in (
        capsys.readouterr().err
    )
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket="in-bkt")


def test_wait_follows_the_job_to_its_end(aws, capsys):
    table = boto3.resource("dynamodb").Table("jobs")
    key = {"job_id": "j2", "item": "JOB"}
    table.put_item(Item={**key, "status": "FETCHING"})
    steps = [
        {"status": "FETCHING", "fetched_bytes": 2_500_000},
        {"status": "PENDING"},
        {"status": "RUNNING", "chunk_count": 3, "done": {0}},
        {"status": "RUNNING", "chunk_count": 3, "done": {0, 2}},
        {"status": "DONE", "chunk_count": 3, "done": {0, 1, 2}, "output": "s3://out/x.mp4"},
    ]

    def progress():
        for step in steps:
            time.sleep(0.15)
            table.put_item(Item={**key, **step})

    worker = threading.Thread(target=progress)
    worker.start()
    code = main(["status", "j2", "--wait", "--interval", "0.05"])
    worker.join()
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["output"] == "s3://out/x.mp4"
    assert err.splitlines() == [
        "j2: FETCHING",
        "j2: FETCHING (2.5 MB downloaded)",
        "j2: PENDING",
        "j2: RUNNING (1/3 chunks)",
        "j2: RUNNING (2/3 chunks)",
        "j2: DONE (3/3 chunks)",
    ]
    table.put_item(Item={"job_id": "j3", "item": "JOB", "status": "FAILED", "reason": "no video"})
    assert main(["status", "j3", "--wait"]) == 1
    assert "job j3 failed: no video" in capsys.readouterr().err


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
