"""ONNX Runtime on the CPU: same outputs as eager, chosen by measurement, eager fallback."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.conftest import run_cli
from upscaler.engine import onnx_runtime
from upscaler.engine.onnx_runtime import OrtForward, RuntimeSelector
from upscaler.engine.quantize import calibration_batches
from upscaler.engine.runner import Planes, Upscaler
from upscaler.models import load_model
from upscaler.models.compact import CompactSR


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", ["fast", "compact"])
def test_onnx_matches_eager(name):
    torch.manual_seed(0)
    model = CompactSR(2, width=8, depth=2).eval() if name == "compact" else load_model(name, 2)
    shape = (2, 3 if name == "compact" else 1, 36, 50)
    forward = RuntimeSelector(model, "onnx").forward_for(shape)
    assert isinstance(forward, OrtForward)
    x = torch.rand(shape)
    with torch.inference_mode():
        assert (forward(x) - model(x)).abs().max() < 1e-5
    # the same session serves another even size (dynamic H/W)
    y = torch.rand(1, shape[1], 20, 30)
    with torch.inference_mode():
        assert (forward(y) - model(y)).abs().max() < 1e-5


def test_odd_sizes_small_frames_and_interpolation_stay_eager():
    model = load_model("fast", 2)
    bicubic = load_model("bicubic", 2)
    assert RuntimeSelector(bicubic, "onnx").forward_for((1, 1, 400, 400)) is bicubic
    assert RuntimeSelector(model, "onnx").forward_for((1, 1, 35, 50)) is model
    assert RuntimeSelector(model, "auto").forward_for((1, 1, 36, 50)) is model  # < MIN_PIXELS


def test_auto_measures_once_and_caches_the_choice(cache, monkeypatch):
    monkeypatch.setattr(onnx_runtime, "MIN_PIXELS", 0)
    model = load_model("fast", 2)
    first = RuntimeSelector(model, "auto").forward_for((1, 1, 48, 64))
    saved = json.loads((cache / "runtime.json").read_text())
    (entry,) = saved.values()
    assert entry["torch_ms"] > 0 and entry["onnx_ms"] > 0
    assert (entry["runtime"] == "onnx") == isinstance(first, OrtForward)

    def no_measuring(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(onnx_runtime, "_time", no_measuring)
    again = RuntimeSelector(model, "auto").forward_for((1, 1, 48, 64))
    assert type(again) is type(first)
    # another size of the same area class (and batch) reuses the answer too
    similar = RuntimeSelector(model, "auto").forward_for((3, 1, 52, 60))
    assert type(similar) is type(first)


def test_falls_back_to_eager_without_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    assert not onnx_runtime.onnxruntime_available()
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx")
    planes = Planes(torch.rand(1, 1, 36, 50), None, None)
    assert up.runtime.forward_for((1, 1, 36, 50)) is up.model
    with torch.inference_mode():
        assert torch.equal(up.upscale(planes).y, up.model(planes.y))


def test_upscaler_through_onnx_equals_eager():
    planes = Planes(*(torch.rand(2, 1, 40, 60) for _ in range(3)))
    eager = Upscaler("fast", 2, "cpu", tile=0, runtime="torch").upscale(planes)
    onnx = Upscaler("fast", 2, "cpu", tile=0, runtime="onnx").upscale(planes)
    for a, b in zip((eager.y, eager.cb, eager.cr), (onnx.y, onnx.cb, onnx.cr), strict=True):
        assert (a - b).abs().max() < 1e-5


def test_int8_fast_stays_close_to_float():
    """Tolerance (8-bit code values): 0.25 on average, and under 0.5 % of pixels more than 2
    off (saturated activations are clipped at the calibration percentile: up to ~25 there)."""
    model = load_model("fast", 2)
    forward = RuntimeSelector(model, "onnx-int8").forward_for((1, 1, 240, 320))
    assert isinstance(forward, OrtForward) and forward.path.name.endswith(".int8.onnx")
    x = torch.from_numpy(calibration_batches("y", 8)[7])
    with torch.inference_mode():
        diff = (forward(x) - model(x)).abs() * 255
    assert diff.mean() < 0.25 and (diff > 2).float().mean() < 0.005, diff.mean()


def test_tiles_through_onnx_equal_the_whole_frame():
    """Tiles of odd size (frame edges) run eager, the others on ONNX: still seamless."""
    planes = Planes(torch.rand(1, 1, 70, 90), None, None)
    whole = Upscaler("fast", 2, "cpu", tile=0, runtime="torch").upscale(planes)
    tiled = Upscaler("fast", 2, "cpu", tile=32, runtime="onnx").upscale(planes)
    assert (whole.y - tiled.y).abs().max() < 1e-4


def test_cli_upscale_with_a_forced_runtime(basic_clip, tmp_path, cache):
    out = tmp_path / "o.mp4"
    done = run_cli("upscale", str(basic_clip), "-o", str(out), "--runtime", "onnx", "--json")
    assert done.returncode == 0, done.stderr
    assert out.is_file() and list((cache / "onnx").glob("*.onnx"))
