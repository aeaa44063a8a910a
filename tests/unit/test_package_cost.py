"""`upscaler.package` (servable model.tar.gz) and `upscaler.cost` (estimates from the tables)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import upscaler
from upscaler import cost, package
from upscaler.errors import InputError, ModelError, UpscalerError
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.registry import get_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "fast_x2.pt"
    model = get_spec("fast").builder(2, width=8, depth=1)
    save_checkpoint(path, "fast", 2, {"width": 8, "depth": 1}, model.state_dict(), {"steps": 1})
    return path


def _parser(add) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add(parser.add_subparsers(dest="command", required=True))
    return parser


def test_package_layout_and_model_fn_from_extracted_copy(checkpoint, tmp_path):
    args = _parser(package.add_commands).parse_args(
        ["sagemaker", "package", "--model", str(checkpoint), "-o", str(tmp_path / "model.tar.gz")]
    )
    assert args.func(args) == 0
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "x", filter="data")
    for name in (
        "manifest.json",
        "code/inference.py",
        "code/requirements.txt",
        "code/upscaler/__init__.py",
    ):
        assert name in names
    assert "code/upscaler/models/registry.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # A checkpoint file is served under its stem; the vendored core carries no weights.
    assert [n for n in names if n.endswith(".pt")] == ["models/fast_x2_x2.pt"]
    assert json.loads((tmp_path / "x" / "manifest.json").read_text()) == {"fast_x2": [2]}

    # A fresh interpreter with only code/ first on the path, as in the inference container.
    probe = (
        "import inference, upscaler; m = inference.model_fn('.'); "
        "print(upscaler.__file__, m.get().scale, m.name)"
    )
    env = {**os.environ, "PYTHONPATH": "code", "UPSCALER_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "x",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    where, scale, name = done.stdout.split()
    assert Path(where).resolve().is_relative_to((tmp_path / "x" / "code").resolve())
    assert (scale, name) == ("2", "fast_x2")


def test_package_refuses_bad_requests(checkpoint, tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="not x4"):
        package.package_model(str(checkpoint), 4, tmp_path / "m.tar.gz")
    with pytest.raises(ModelError, match="no checkpoint is shipped for esrgan-lite x2"):
        package.package_model("esrgan-lite", 2, tmp_path / "m.tar.gz")
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(upscaler, "__file__", str(tmp_path / "site" / "upscaler" / "__init__.py"))
    with pytest.raises(UpscalerError, match="source checkout"):
        package.sagemaker_dir()


def test_default_archive_is_every_shipped_model_and_reproducible(tmp_path):
    first = package.package_default(tmp_path / "a.tar.gz")
    second = package.package_default(tmp_path / "b.tar.gz")
    assert first.read_bytes() == second.read_bytes()  # an unchanged repo: an unchanged asset
    with tarfile.open(first) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        weights = sorted(n for n in tar.getnames() if n.endswith(".pt"))
    assert manifest["esrgan-lite"] == manifest["esrgan-lite-gan"] == [4]
    assert manifest["bicubic"] == [2, 3, 4]  # weightless: served without a file
    assert weights == sorted(
        f"models/{n}_x{s}.pt"
        for n, scales in manifest.items()
        if n not in package.WEIGHTLESS
        for s in scales
    )


def test_stage_training_source(tmp_path):
    src = package.stage_training_source(tmp_path / "src")
    for name in ("train.py", "inference.py", "requirements.txt", "upscaler/package.py"):
        assert (src / name).is_file(), name
    reqs = (src / package.TRAIN_REQUIREMENTS).read_text()
    assert "matplotlib" in reqs and "torch" not in reqs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1h2m3.5s", 3723.5), (" 2H ", 7200)],
)
def test_parse_duration(text, seconds):
    assert cost.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0s", "1m1h"])
def test_parse_duration_refuses(text):
    with pytest.raises(InputError):
        cost.parse_duration(text)


def test_tables_are_marked_and_complete():
    prices, table = cost.prices(), cost.throughput()
    assert prices["as_of"] and "assumed list price as of" in prices["status"]
    entries = [*table["models"], table["codec"], table["pipeline"]]
    assert all(e["status"] in ("measured", "assumed") and e["source"] for e in entries)
    devices = {e["device"] for e in table["models"]}
    assert {i["device"] for i in prices["instances"].values()} <= devices
    assert {"ml.g4dn.xlarge", "ml.g5.xlarge", "ml.c5.2xlarge", "ml.m5.xlarge"} <= set(
        prices["instances"]
    )


def test_estimate_scales_with_work():
    one = cost.estimate_cost(600, 1920, 1080, 2, "compact", "ml.g4dn.xlarge")
    two = cost.estimate_cost(1200, 1920, 1080, 2, "compact", "ml.g4dn.xlarge")
    assert two["endpoint_s"] == pytest.approx(2 * one["endpoint_s"], rel=1e-3)
    assert one["endpoint_s"] == max(one["model_s"], one["codec_s"])  # GPU: overlapped
    assert one["total_usd"] == pytest.approx(
        one["endpoint_usd"] + one["scale_to_zero_usd"] + one["pipeline_usd"]
    )
    assert 0 < one["pipeline_usd"] < one["endpoint_usd"]
    cpu = cost.estimate_cost(600, 1920, 1080, 2, "fast", "ml.c5.2xlarge")
    assert cpu["endpoint_s"] == pytest.approx(cpu["model_s"] + cpu["codec_s"])  # shared cores
    assert cpu["model_rate"]["status"] == "derived"  # measured per vCPU, scaled to the instance


def test_estimate_refuses_unknowns():
    with pytest.raises(InputError, match="no price"):
        cost.estimate_cost(60, 640, 360, 2, "fast", "ml.p5.48xlarge")
    with pytest.raises(InputError, match="no throughput"):
        cost.estimate_cost(60, 640, 360, 2, "nope", "ml.g4dn.xlarge")


def test_cost_command(capsys):
    parser = _parser(cost.add_commands)
    args = parser.parse_args(["cost", "--input-duration", "10m", "--model", "compact", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instance"] == "ml.g4dn.xlarge" and len(out["compare"]) == 4
    args = parser.parse_args(["cost", "--input-duration", "90s", "--resolution", "640x360"])
    args.func(args)
    text = capsys.readouterr().out
    assert "ml.c5.2xlarge" in text and "per video minute" in text


def test_registry_names_of_one_network_share_its_rate():
    same = cost.throughput()["same_network"]
    for alias, network in same.items():
        if alias == "note":
            continue
        for instance in ("ml.m5.xlarge", "ml.g4dn.xlarge"):
            mine, theirs = cost.model_rate(alias, instance), cost.model_rate(network, instance)
            assert mine["px_per_s"] == theirs["px_per_s"]
    assert not {e["model"] for e in cost.throughput()["models"]} & set(same)
