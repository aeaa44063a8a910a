"""The GPU path's CPU-checkable parts: precision choice and the benchmark's refusal."""

from __future__ import annotations

import pytest
import torch

from benchmarks import gpu
from upscaler.engine.runner import Planes, Upscaler
from upscaler.errors import UpscalerError


def test_bf16_runs_and_stays_close_to_fp32():
    planes = Planes(*(torch.rand(1, 1, 24, 32) for _ in range(3)))
    fp32 = Upscaler("fast", 2, "cpu", tile=0, runtime="torch").upscale(planes)
    bf16 = Upscaler("fast", 2, "cpu", tile=0, precision="bf16").upscale(planes)
    assert bf16.y.dtype == torch.float32
    assert (bf16.y - fp32.y).abs().max() < 0.05  # bf16 keeps 8 bits of mantissa


def test_codes_come_back_rounded_on_the_device():
    planes = Planes(*(torch.rand(1, 1, 24, 32) for _ in range(3)))
    up = Upscaler("fast", 2, "cpu", tile=0)
    floats, codes = up.upscale(planes), up.upscale(planes, bits=10)
    assert codes.y.dtype == torch.int16 and codes.cb.shape == floats.cb.shape
    assert torch.equal(codes.y, (floats.y * 1020).round().clamp(0, 1023).short())


def test_auto_precision_is_fp32_on_the_cpu_and_bad_names_fail():
    assert Upscaler("bicubic", 2, "cpu").dtype == torch.float32
    with pytest.raises(UpscalerError, match="unknown precision"):
        Upscaler("bicubic", 2, "cpu", precision="int4")


def test_gpu_benchmark_says_so_without_cuda(capsys):
    assert not torch.cuda.is_available()
    assert gpu.main([]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_gpu_benchmark_runs_through_on_the_cpu(tmp_path, capsys, monkeypatch):
    """Every row of the GPU script, on the CPU at a tiny size (a smoke test: the real run
    needs a GPU); the x264 fallback is what runs for both encoder rows here."""
    monkeypatch.setenv("UPSCALER_NVENC", "1")
    out = tmp_path / "gpu.md"
    args = ["--device", "cpu", "--size", "64x48", "--seconds", "0.1", "--clip-seconds", "0.2"]
    assert gpu.main([*args, "--models", "fast", "--no-compile", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("| fast |") == 5 and "failed" not in text
    assert "libx264 -> 128x96" in text and '"input_mpx_per_s"' in text
