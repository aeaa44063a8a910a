"""notebooks/train.ipynb runs top to bottom against a moto server (dry-run mode)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import nbformat
import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
BUCKET = "upscaler-test-bucket"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_env(monkeypatch, tmp_path):
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_VALIDATE_ROLE": "false",  # moto cannot simulate IAM policies
        "UPSCALER_NOTEBOOK_DRY_RUN": "1",
        "UPSCALER_BUCKET": BUCKET,
        "UPSCALER_DATA_DIR": str(tmp_path / "data"),
        "UPSCALER_HYPERPARAMETERS": json.dumps(
            {"steps": 4, "batch-size": 2, "crop": 48, "val-every": 2, "log-every": 2}
            | {"warmup": 1, "threads": 1, "model-config": {"width": 8, "depth": 1}}
        ),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()
    patches = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 3), dtype=np.uint8)
    np.save(tmp_path / "data" / "train_hr.npy", patches)
    np.save(tmp_path / "data" / "dev_hr.npy", patches[:1])
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield
    server.stop()


@pytest.mark.slow
def test_train_notebook_runs_against_moto(moto_env):
    nb = nbformat.read(NOTEBOOKS / "train.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.endswith("data/train_hr.npy") for k in keys)
    assert any(k.endswith("output/model.tar.gz") for k in keys)
    assert any("sourcecode" in k or "/code/" in k for k in keys), keys  # uploaded by dry_run
    out = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "step=4 loss=" in out and "deleted" in out
