"""The SageMaker handler in-process against moto S3, with real chunks and images."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

from tests.aws.conftest import e2e_model
from tests.clips import ClipSpec, make_clip
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.registry import get_spec
from upscaler.package import package_default

BUCKET = "work"


@pytest.fixture(scope="module")
def chunk(clip_dir) -> Path:
    return make_clip(clip_dir / "inference_chunk.mp4", ClipSpec(frames=6, audio=False))


@pytest.fixture(scope="module")
def models(inference):
    from lambdas.pipeline_local import endpoint_models

    return endpoint_models(e2e_model(), 2)


@pytest.fixture(scope="module")
def served(inference, tmp_path_factory):
    """model_fn on the default archive (what `cdk deploy` publishes), extracted."""
    root = tmp_path_factory.mktemp("model")
    with tarfile.open(package_default(root / "model.tar.gz")) as tar:
        tar.extractall(root / "x", filter="data")
    return inference.model_fn(str(root / "x"))


@pytest.fixture
def s3(monkeypatch, chunk):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ALLOWED_BUCKETS", f"{BUCKET}, other")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(chunk), BUCKET, "in/chunk.mp4")
        client.put_object(Bucket=BUCKET, Key="in/garbage.mp4", Body=b"\x00" * 4096)
        yield client


def invoke(inference, models, body: bytes, content_type: str) -> tuple[bytes, str]:
    data = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(data, models), "application/json")


def test_chunk_request_upscales_to_s3(inference, models, s3, tmp_path):
    spec = {"chunk": f"s3://{BUCKET}/in/chunk.mp4", "output": f"s3://{BUCKET}/up/chunk.mp4"}
    body, content_type = invoke(
        inference, models, json.dumps({**spec, "crf": 20}).encode(), "application/json"
    )
    result = json.loads(body)
    assert content_type == "application/json"
    assert (result["frames"], result["width"], result["height"]) == (6, 192, 128)
    assert result["output"] == spec["output"] and result["fps"] > 0
    s3.download_file(BUCKET, "up/chunk.mp4", str(tmp_path / "up.mp4"))
    from upscaler.media.probe import probe

    info = probe(tmp_path / "up.mp4")
    assert (info.video.width, info.video.height, info.video.frame_count) == (192, 128, 6)


GOOD = {"chunk": f"s3://{BUCKET}/in/chunk.mp4", "output": f"s3://{BUCKET}/up/x.mp4"}


def test_chunk_request_can_name_the_simplified_esrgan(inference, served, s3, tmp_path):
    """The default archive serves every shipped model: a request may ask for esrgan-lite x4."""
    assert served.manifest["esrgan-lite"] == [4]
    spec = {**GOOD, "output": f"s3://{BUCKET}/up/esrgan.mp4", "model": "esrgan-lite", "scale": 4}
    body, _ = invoke(inference, served, json.dumps(spec).encode(), "application/json")
    result = json.loads(body)
    assert (result["model"], result["frames"], result["width"], result["height"]) == (
        "esrgan-lite",
        6,
        384,
        256,
    )
    s3.download_file(BUCKET, "up/esrgan.mp4", str(tmp_path / "esrgan.mp4"))
    from upscaler.media.probe import probe

    assert probe(tmp_path / "esrgan.mp4").video.frame_count == 6


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_image_body_gives_a_png(inference, models, kind):
    rgb = (np.arange(24 * 16 * 3) % 251).astype(np.uint8).reshape(16, 24, 3)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=kind)
    body, content_type = invoke(inference, models, buffer.getvalue(), f"image/{kind.lower()}")
    assert content_type == "image/png"
    assert Image.open(io.BytesIO(body)).size == (48, 32)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", 400, "must be an object"),
        (json.dumps({"chunk": GOOD["chunk"]}).encode(), "application/json", 400, "'output'"),
        (
            json.dumps({**GOOD, "model": "nope"}).encode(),
            "application/json",
            400,
            "model nope is not served here; served: fast x2",
        ),
        (
            json.dumps({**GOOD, "model": "fast", "scale": 4}).encode(),
            "application/json",
            400,
            "model fast x4 is not served here",
        ),
        (json.dumps({**GOOD, "scale": 9}).encode(), "application/json", 400, "scale"),
        (json.dumps({**GOOD, "crf": 99}).encode(), "application/json", 400, "crf"),
        (json.dumps({**GOOD, "deinterlace": "weave"}).encode(), "application/json", 400, "deint"),
        (
            json.dumps({**GOOD, "before": "s3://work/c.mp4"}).encode(),
            "application/json",
            400,
            '"before" must be a list of at most 2 chunk URIs',
        ),
        (
            json.dumps({**GOOD, "after": ["s3://elsewhere/c.mp4"]}).encode(),
            "application/json",
            403,
            "\"after\": bucket 'elsewhere' is not one",
        ),
        (
            json.dumps({**GOOD, "chunk": "s3://elsewhere/c.mp4"}).encode(),
            "application/json",
            403,
            "'elsewhere' is not one",
        ),
        (json.dumps({**GOOD, "chunk": "/etc/passwd"}).encode(), "application/json", 400, "s3://"),
        (
            json.dumps({**GOOD, "chunk": f"s3://{BUCKET}/in/garbage.mp4"}).encode(),
            "application/json",
            400,
            "cannot upscale the chunk: s3://work/in/garbage.mp4",
        ),
        (
            json.dumps({**GOOD, "chunk": f"s3://{BUCKET}/in/missing.mp4"}).encode(),
            "application/json",
            404,
            "cannot read",
        ),
        (b"\x89PNG not really", "image/png", 400, "not a readable image"),
        (b"text", "text/plain", 415, "unsupported content type"),
    ],
)
def test_bad_requests_are_clear_4xx_errors(
    inference, models, s3, body, content_type, status, words
):
    with pytest.raises(inference.BadRequest) as caught:
        invoke(inference, models, body, content_type)
    assert caught.value.status_code == status
    assert words in str(caught.value)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


def test_model_fn_loads_model_pt(inference, tmp_path):
    model = get_spec("fast").builder(2)
    save_checkpoint(tmp_path / "model.pt", "fast", 2, {}, model.state_dict())
    loaded = inference.model_fn(str(tmp_path))
    assert (loaded.name, loaded.default.scale) == ("fast", 2)
    assert loaded.get("fast", 2) is loaded.default and loaded.manifest == {"fast": [2]}
    with pytest.raises(inference.BadRequest, match="bicubic is not served here; served: fast x2"):
        loaded.get("bicubic", 2)
