"""`sagemaker/train.py` as SageMaker runs it: SM_* environment, --hyperparameters, resume."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from upscaler.models.registry import build_from_checkpoint

SAGEMAKER = Path(__file__).resolve().parents[2] / "sagemaker"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


sm_train = _load("sm_train", SAGEMAKER / "train.py")


@pytest.fixture(scope="module")
def channel(tmp_path_factory) -> Path:
    """Smooth random 48x48 'photos' as train_hr.npy and dev_hr.npy."""
    root = tmp_path_factory.mktemp("training")
    small = np.random.default_rng(0).integers(0, 256, (16, 12, 12, 3)).astype(np.float32)
    big = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2), size=(48, 48), mode="bilinear"
    )
    patches = big.permute(0, 2, 3, 1).round().clamp(0, 255).byte().numpy()
    np.save(root / "train_hr.npy", patches)
    np.save(root / "dev_hr.npy", patches[:2])
    return root


def _run(channel: Path, root: Path, steps: int) -> str:
    env = {
        **os.environ,
        "SM_CHANNEL_TRAINING": str(channel),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
        "SM_CHECKPOINT_DIR": str(root / "checkpoints"),
    }
    args = ["--arch", "fast", "--scale", "2", "--steps", str(steps), "--batch-size", "4"]
    args += ["--crop", "48", "--val-every", "10", "--log-every", "5", "--warmup", "2"]
    args += ["--model-config", '{"width": 8, "depth": 1}', "--threads", "1"]
    done = subprocess.run(
        [sys.executable, str(SAGEMAKER / "train.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def _steps(stdout: str) -> list[int]:
    return [int(s) for s in re.findall(r"^step=(\d+) loss=", stdout, re.MULTILINE)]


def test_train_writes_servable_artifact_and_resumes(channel, tmp_path, monkeypatch):
    first = _run(channel, tmp_path, steps=10)
    assert _steps(first) == [5, 10]
    for metric in sm_train.METRIC_DEFINITIONS:
        assert re.search(metric["Regex"], first), metric
    model_dir = tmp_path / "model"
    assert build_from_checkpoint(model_dir / "model.pt", 2).meta["steps"] == 10
    for name in ("inference.py", "requirements.txt", "upscaler/__init__.py"):
        assert (model_dir / "code" / name).is_file(), name
    assert not list((model_dir / "code").rglob("*.pt"))
    assert (tmp_path / "output" / "log.jsonl").is_file()

    second = _run(channel, tmp_path, steps=20)  # a restarted job with a longer schedule
    assert "resumed" in second
    assert _steps(second) == [15, 20]
    assert build_from_checkpoint(model_dir / "model.pt", 2).meta["steps"] == 20

    monkeypatch.setenv("UPSCALER_DEVICE", "cpu")
    inference = _load("sm_inference", SAGEMAKER / "inference.py")
    models = inference.model_fn(str(model_dir))
    assert models.get().scale == 2


def test_hyperparameters_map_onto_train_config():
    pairs = sm_train.hyperparameters(["--batch-size", "16", "--lr=2e-3", "--arch", "fast"])
    assert pairs == ["batch_size=16", "lr=2e-3", "arch=fast"]
    with pytest.raises(SystemExit, match="SageMaker environment"):
        sm_train.hyperparameters(["--out-dir", "/tmp/x"])
    with pytest.raises(SystemExit, match="needs a value"):
        sm_train.hyperparameters(["--steps"])


def test_sharded_channel_is_concatenated(tmp_path):
    for i in range(2):
        np.save(tmp_path / f"train_hr_{i}.npy", np.full((3, 8, 8, 3), i, np.uint8))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    train, dev = sm_train.training_data(tmp_path, scratch)
    assert np.load(train).shape == (6, 8, 8, 3) and dev is None


def test_metric_line_format():
    assert sm_train.metric_line({"step": 5, "loss": 0.01, "lr": 0.002, "sec": 1}) == (
        "step=5 loss=0.010000 lr=0.002"
    )
    assert sm_train.metric_line({"step": 5, "dev_psnr": 33.2}) == "step=5 dev_psnr=33.200"
    assert json.dumps(sm_train.METRIC_DEFINITIONS)  # plain data for the notebook


def test_dataset_shards_channel_is_streamed(tmp_path):
    """A channel holding `upscaler dataset build` output (the training/shards/ prefix)."""
    from upscaler.dataset.shards import ShardWriter
    from upscaler.train.data import load_patches

    writer = ShardWriter(tmp_path / "clip-a", patch=8)
    for i in range(5):
        writer.add(np.full((8, 8, 3), i, np.uint8))
    writer.close(source="clip-a")
    train, dev = sm_train.training_data(tmp_path, tmp_path / "scratch")
    assert train == tmp_path and dev is None
    patches = load_patches(train)
    assert patches.shape == (5, 8, 8, 3) and int(patches[4][0, 0, 0]) == 4
