"""OpenVINO on the CPU: ONNX Runtime's outputs at fp32, bf16 kept inside the learned residual
(or a stated fallback), the engine's thread count, auto's choice cached, nothing phoned home."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from upscaler.engine import onnx_runtime
from upscaler.engine import openvino_runtime as ov
from upscaler.engine.fused import FusedYuv
from upscaler.engine.onnx_runtime import RuntimeSelector
from upscaler.engine.runner import Planes, Upscaler
from upscaler.evaluate.bench import sample_frames
from upscaler.evaluate.quality import evaluate
from upscaler.models import load_model
from upscaler.models.compact import CompactSR


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fused(runtime: str, frames) -> tuple[Upscaler, list[np.ndarray]]:
    """The fused session of `runtime` on `frames`: each output plane stacked over frames."""
    up = Upscaler("fast", 2, "cpu", tile=0, runtime=runtime)
    shapes = tuple(p.shape for p in frames[0].planes)
    fused = up.fused(shapes, len(frames), 8)
    assert isinstance(fused, FusedYuv)
    out = fused([f.planes for f in frames])
    return up, [np.stack([o[i] for o in out]).astype(int) for i in range(len(shapes))]


def test_openvino_fused_equals_onnx_runtime():
    """The ONNX fused tests' tolerance: at most 1 code, on under 0.1 % of samples."""
    frames = sample_frames(96, 64, 3)
    up, got = _fused("openvino", frames)
    assert up.runtime.name_for((1, 1, 64, 96)) == "openvino"
    assert isinstance(
        up.fused(tuple(p.shape for p in frames[0].planes), 3, 8).session, ov.OvSession
    )
    _, want = _fused("onnx", frames)
    for g, w in zip(got, want, strict=True):
        diff = np.abs(g - w)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.001


def test_openvino_forward_equals_eager():
    model = load_model("fast", 2)
    x = torch.rand(2, 1, 36, 50)
    forward = RuntimeSelector(model, "openvino").forward_for(tuple(x.shape))
    assert isinstance(forward, ov.OvForward) and forward.precision == "f32"
    with torch.inference_mode():
        assert (forward(x) - model(x)).abs().max() < 1e-5
        assert (forward(x[:1]) - model(x[:1])).abs().max() < 1e-5  # another batch size


def test_bf16_stays_inside_the_learned_residual(caplog):
    """Tolerance vs OpenVINO fp32 (fast x2, sample frames): Y at most 1 code off on under 5 %
    of samples; chroma, all fp32, identical. bf16 on the whole graph fails both (codes above
    128 round to even values in bf16). A CPU without bf16: the runtime says so, runs fp32."""
    caplog.set_level(logging.WARNING)
    frames = sample_frames(128, 96, 2)
    up, got = _fused("openvino-bf16", frames)
    _, want = _fused("openvino", frames)
    diff = np.abs(got[0] - want[0])
    if not ov.bf16_supported():
        assert up.runtime.name_for((1, 1, 96, 128)) == "openvino" and diff.max() == 0
        assert "no bf16 support" in caplog.text
        return
    assert up.runtime.name_for((1, 1, 96, 128)) == "openvino-bf16"
    assert diff.max() <= 1 and 0 < (diff > 0).mean() < 0.05
    for g, w in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(g, w)
    # the unfused forward (float outputs, in codes): off by 0.03 on average, under 1 at most
    x = torch.from_numpy(frames[0].planes[0][None, None].copy()).float() / 255
    forward = up.runtime.forward_for(tuple(x.shape))
    with torch.inference_mode():
        off = (forward(x) - up.model(x)).abs() * 255
    assert 0 < off.mean() < 0.1 and off.max() < 1
    # unfused chroma runs OpenVINO fp32 as asked, without a "no split()" fallback warning
    up.upscale(Planes(x, x[..., ::2, ::2], x[..., ::2, ::2]))
    assert "no split()" not in caplog.text


def test_bf16_without_cpu_support_or_split_says_so_and_runs_fp32(monkeypatch, caplog):
    """The test for CPUs without bf16 (forced here, so it runs on every machine)."""
    caplog.set_level(logging.WARNING)
    x = torch.rand(1, 1, 36, 50)
    compact = CompactSR(2, width=8, depth=2).eval()
    selector = RuntimeSelector(compact, "openvino-bf16")  # no split(): fp32 on any CPU
    assert selector.name_for(tuple(x.shape)) == "openvino"
    assert "CompactSR has no split()" in caplog.text
    monkeypatch.setattr(ov, "bf16_supported", lambda: False)
    assert not onnx_runtime.auto_bf16(load_model("fast", 2))
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="openvino-bf16")
    assert up.runtime.name_for(tuple(x.shape)) == "openvino"
    assert "no bf16 support" in caplog.text
    forward = up.runtime.forward_for(tuple(x.shape))
    with torch.inference_mode():
        assert (forward(x) - up.model(x)).abs().max() < 1e-5


def test_auto_measures_openvino_and_caches_the_choice(cache, monkeypatch):
    monkeypatch.setattr(onnx_runtime, "MIN_PIXELS", 0)
    model = load_model("fast", 2)
    selector = RuntimeSelector(model, "auto")
    name = selector.name_for((1, 1, 48, 64))
    (entry,) = json.loads((cache / "runtime.json").read_text()).values()
    times = {k.removesuffix("_ms"): v for k, v in entry.items() if k.endswith("_ms")}
    expected = {"torch", "onnx", "openvino"} | ({"openvino-bf16"} if ov.bf16_supported() else set())
    assert set(times) == expected and all(t > 0 for t in times.values())
    # the cache keeps rounded times: the pick is the fastest, or tied with it once rounded
    assert name == entry["runtime"] and times[name] == min(times.values())
    fused = Upscaler(model, 2, "cpu", tile=0).fused(((48, 64), (24, 32), (24, 32)), 1, 8)
    assert (fused is None) == (name == "torch")


def test_threads_follow_the_engine_and_no_telemetry(monkeypatch):
    monkeypatch.delitem(sys.modules, "openvino_telemetry", raising=False)
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="openvino")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as live mode does after loading its models
    try:
        fused = up.fused(((40, 40),), 1, 8)
        assert isinstance(fused, FusedYuv)
        fused([[np.zeros((40, 40), np.uint8)]])
    finally:
        torch.set_num_threads(before)
    compiled = fused.session.request.get_compiled_model()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert "openvino_telemetry" not in sys.modules


def _pairs(folder, sizes: dict[str, tuple[int, int]]) -> None:
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        lr = rng.integers(0, 256, (h, w, 3), np.uint8)
        Image.fromarray(lr).save(folder / f"{name}_SRF_2_LR.png")
        Image.fromarray(lr.repeat(2, 0).repeat(2, 1)).save(folder / f"{name}_SRF_2_HR.png")


def test_eval_names_the_runtimes_that_ran(tmp_path):
    _pairs(tmp_path, {"even": (40, 48), "odd": (41, 48)})
    assert evaluate("fast", 2, tmp_path, "openvino")["runtime"] == "openvino+torch"
    (tmp_path / "odd_SRF_2_HR.png").unlink()
    assert evaluate("fast", 2, tmp_path, "torch")["runtime"] == "torch"


def test_cli_eval_takes_a_runtime(tmp_path):
    _pairs(tmp_path, {"even": (40, 48)})
    args = ("eval", "--model", "fast", "--dataset", str(tmp_path), "--json")
    done = run_cli(*args, "--runtime", "openvino")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runtime"] == "openvino"
    assert run_cli(*args, "--runtime", "tensorrt").returncode == 2


def test_falls_back_to_eager_without_openvino(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails
    assert not ov.openvino_available()
    up = Upscaler("fast", 2, "cpu", tile=0, runtime="openvino")
    assert up.runtime.forward_for((1, 1, 36, 50)) is up.model
    assert "openvino is not installed" in caplog.text


def test_cli_upscale_reports_the_runtime(basic_clip, tmp_path):
    out = tmp_path / "o.mp4"
    args = ("upscale", str(basic_clip), "-o", str(out), "--model", "fast", "--json")
    done = run_cli(*args, "--runtime", "openvino")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runtime"] == "openvino"
