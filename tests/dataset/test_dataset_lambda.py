"""The dataset Lambda on moto (S3 event -> SQS -> handler), and its CDK construct with cdk-nag."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from lambdas import aws
from lambdas import dataset as handler_module
from lambdas.pipeline_local import CONTEXT, REGION
from tests.clips import ClipSpec, make_clip
from upscaler.dataset.shards import ShardedPatches

BUCKET = "work-bucket"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("raw") / "clip.mp4", ClipSpec(160, 96, frames=12))


@pytest.fixture
def env(monkeypatch) -> Iterator[str]:
    """A moto work bucket whose `training/raw/` notifications go to a queue (as deployed)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("WORK_BUCKET", BUCKET)
    monkeypatch.setenv("DATASET_PATCH", "32")
    with mock_aws():
        s3, sqs = aws.client("s3"), aws.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        url = sqs.create_queue(QueueName="dataset", Attributes={"VisibilityTimeout": "0"})
        queue = url["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "training/raw/"}]}
                        },
                    }
                ]
            },
        )
        yield queue
        aws.reset()


def deliver(queue: str) -> tuple[list[dict], dict]:
    """Receive the queue's messages as Lambda's SQS records and run the handler on them."""
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dataset",
            "awsRegion": REGION,
        }
        for m in messages
        if "Records" in json.loads(m["Body"])  # skip moto's s3:TestEvent
    ]
    for m in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return records, handler_module.handler({"Records": records}, CONTEXT)


def objects(prefix: str = "training/shards/") -> dict[str, int]:
    return aws.list_sizes(BUCKET, prefix)


def download_dataset(tmp: Path, prefix: str) -> Path:
    for key in objects(prefix):
        path = tmp / key[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        aws.client("s3").download_file(BUCKET, key, str(path))
    return tmp


def test_raw_video_becomes_shards_and_bad_sources_do_not_poison_them(env, clip, tmp_path):
    s3 = aws.client("s3")
    s3.upload_file(
        str(clip), BUCKET, "training/raw/my clip.mp4", {"Metadata": {"licence": "CC-BY 4.0"}}
    )
    records, answer = deliver(env)
    assert len(records) == 1 and answer["batchItemFailures"] == []
    first = objects()
    manifest_key = "training/shards/my_clip/manifest.json"
    assert manifest_key in first
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["licence"] == "CC-BY 4.0" and manifest["patch"] == 32
    assert manifest["source_uri"] == f"s3://{BUCKET}/training/raw/my clip.mp4"
    assert all(s["file"].startswith(manifest["build_id"] + "/") for s in manifest["shards"])
    patches = ShardedPatches(download_dataset(tmp_path / "a", "training/shards/my_clip/"))
    assert len(patches) == manifest["count"] > 0

    # A corrupt upload and an audio-only one under the same name: reported, nothing changes.
    # (A batch whose every record failed makes Powertools fail the invocation: Lambda then
    # returns the message to the queue, and after maxReceiveCount it lands in the DLQ.)
    s3.put_object(Bucket=BUCKET, Key="training/raw/my clip.mp4", Body=b"\x00garbage" * 500)
    with pytest.raises(BatchProcessingError, match="not a supported video file"):
        deliver(env)
    s3.put_object(Bucket=BUCKET, Key="training/raw/my clip.mp4", Body=audio_only())
    s3.upload_file(str(clip), BUCKET, "training/raw/second.mp4")
    records, answer = deliver(env)  # one bad, one good record in one batch
    assert len(records) == 2
    bad = [r["messageId"] for r in records if "my+clip" in r["body"] or "my%20clip" in r["body"]]
    assert answer["batchItemFailures"] == [{"itemIdentifier": bad[0]}]
    second = {k: v for k, v in objects().items() if k.startswith("training/shards/second/")}
    assert second and {k: v for k, v in objects().items() if k not in second} == first

    # A good rebuild commits a new build and removes the old one's shards.
    s3.upload_file(str(clip), BUCKET, "training/raw/my clip.mp4")
    _, answer = deliver(env)
    assert answer["batchItemFailures"] == []
    rebuilt = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert rebuilt["build_id"] != manifest["build_id"]
    assert sorted(objects("training/shards/my_clip/")) == sorted(
        [manifest_key] + [f"training/shards/my_clip/{s['file']}" for s in rebuilt["shards"]]
    )


def test_ignores_other_prefixes_and_buckets(env):
    assert handler_module.build_from_s3("other-bucket", "training/raw/x.mp4") is None
    assert handler_module.build_from_s3(BUCKET, "uploads/x.mp4") is None
    assert handler_module.dataset_name("training/raw/a/b c.mkv") == "a_b_c"


def audio_only() -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate = 48000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


# --- the construct -----------------------------------------------------------------------
def test_construct_synthesizes_cdk_nag_clean(tmp_path):
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    cdk = pytest.importorskip("aws_cdk")
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    from stacks import FEATURE_FLAGS
    from stacks.dataset import DatasetBuilder
    from stacks.pipeline import REPO_ROOT

    app = cdk.App(context=dict(FEATURE_FLAGS), outdir=str(tmp_path))
    stack = cdk.Stack(
        app, "DatasetOnly", env=cdk.Environment(account="123456789012", region=REGION)
    )
    bucket = s3.Bucket(
        stack,
        "Work",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        server_access_logs_prefix="logs/",
    )
    DatasetBuilder(stack, "Dataset", work_bucket=bucket, repo_root=str(REPO_ROOT))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    raw = app.synth().get_stack_by_name("DatasetOnly").template  # raises on any nag finding
    template = Template.from_json(raw)
    template.has_resource_properties(
        "AWS::Lambda::Function", {"ImageConfig": {"Command": ["lambdas.dataset.handler"]}}
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    notifications = next(
        r["Properties"]["NotificationConfiguration"]
        for r in raw["Resources"].values()
        if r["Type"] == "Custom::S3BucketNotifications"
    )
    rules = notifications["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"]
    assert rules == [{"Name": "prefix", "Value": "training/raw/"}]
    queues = [r for r in raw["Resources"].values() if r["Type"] == "AWS::SQS::Queue"]
    assert any("RedrivePolicy" in q["Properties"] for q in queues)
    # least privilege: S3 object access only under the two training prefixes
    policy = next(
        r["Properties"]["PolicyDocument"]
        for k, r in raw["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("DatasetRole")
    )
    text = json.dumps(policy)
    assert "training/raw/*" in text and "training/shards/*" in text
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert "*" not in "".join(actions)
        if any(a.startswith("s3:Put") or a == "s3:DeleteObject" for a in actions):
            assert "training/shards/*" in json.dumps(statement["Resource"])
