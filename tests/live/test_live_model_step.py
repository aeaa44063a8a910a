"""Live mode at its limits: the model tier runs the pipeline's fused step, takes every core,
and the scheduler only falls back as often as the model's cost forces it to."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import psutil
import pytest
import torch

from benchmarks.speed import live_run
from tests.live.test_pacing import frames_at, simulate, slow_tier
from upscaler.live.cli import main as live_main
from upscaler.live.output import TsOutput
from upscaler.live.pacing import FakeClock, Scheduler
from upscaler.live.session import LiveOptions, LiveSession, live_threads
from upscaler.live.source import VideoInfo
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.multiframe import build_fast_mf


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALER_CACHE_DIR", str(tmp_path / "cache"))


def test_live_runs_the_fused_model_step(live_clip):
    options = LiveOptions(source=str(live_clip), runtime="onnx", duration=1.0)
    summary = LiveSession(options).run()
    assert summary["model_step"] == "fused/onnx"
    assert summary["frames_in"] == 25
    assert summary["frames_out"] + summary["dropped"] == 25
    assert summary["torch_threads"] == live_threads(None)


@pytest.mark.parametrize("flag", ["--model", "--fallback"])
def test_live_refuses_a_window_model_in_one_line(live_clip, tmp_path, capsys, flag):
    """A multi-frame model would be fed lone frames: refused, as the model or the fallback."""
    config = {"width": 8, "depth": 2}
    window = tmp_path / "mf.pt"
    save_checkpoint(window, "fast-mf", 2, config, build_fast_mf(2, **config).state_dict())
    code = live_main(["live", str(live_clip), flag, str(window), "--duration", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert lines == [
        f"upscaler: error: {window} reads a window of 3 frames; live mode runs single-frame "
        "models only (e.g. fast)"
    ]


def test_live_uses_every_physical_core_unless_told():
    assert live_threads(None) == (psutil.cpu_count(logical=False) or 1)
    assert live_threads(1) == 1


@pytest.mark.parametrize(("cost", "at_least"), [(0.036, 1.0), (0.044, 0.88), (0.06, 0.6)])
def test_fallback_only_as_often_as_the_model_cost_forces(cost, at_least):
    """25 fps, bicubic 10 ms: a model slower than the 40 ms interval can enhance at most
    (40 - 10) / (cost - 10) of the frames; the scheduler reaches that bound, dropping none."""
    clock = FakeClock()
    tiers = [slow_tier(clock, "model", cost), slow_tier(clock, "bicubic", 0.010)]
    done = simulate(clock, Scheduler(tiers, 0.25, clock), frames_at(25, 500))
    assert len(done) == 500
    assert sum(tier == 0 for _, tier, _ in done) / 500 >= at_least


def _x264_settings(data: bytes) -> str:
    """The options string x264 writes into the SEI of its first packet."""
    with av.open(io.BytesIO(data), format="mpegts") as container:
        data = bytes(next(container.demux(video=0)))
    start = data.index(b"x264 - core")
    return data[start : data.index(b"\x00", start)].decode(errors="replace")


def test_ts_output_preset_auto_follows_the_output_size():
    """1080p output: ultrafast (x264 at veryfast costs a core); zerolatency: sliced threads,
    no lookahead, no B-frames."""
    info = VideoInfo(960, 540, "yuv420p", 8, "bt709", False, Fraction(1, 25), Fraction(25))
    buffer = io.BytesIO()
    out = TsOutput(buffer, info, 2)
    grey = [np.full(shape, 128, np.uint8) for shape in ((1080, 1920), (540, 960), (540, 960))]
    out.video(grey, 0, 1)
    out.close()
    settings = _x264_settings(buffer.getvalue())
    for option in ("subme=0", "me=dia", "sliced_threads=1", "bframes=0", "mbtree=0"):
        assert option in settings, settings


def test_benchmark_live_row_reads_the_session_counters_and_keeps_the_threads():
    """`benchmarks.speed`'s live row: the session's summary, and the bench's later rows keep
    their own thread count (the session sets every physical core)."""
    torch.set_num_threads(1)
    summary = live_run("fast", "160x96", 1.0, 25, out=True)
    assert torch.get_num_threads() == 1
    assert summary["frames_in"] == 25 and summary["out_frames"] == summary["frames_out"]
    assert summary["enhanced"] + summary["degraded"] + summary["dropped"] == 25
