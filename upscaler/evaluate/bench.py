"""Speed benchmark: model-only and end-to-end (decode + upscale + encode) fps."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from upscaler.engine.colour import rgb_to_ycbcr, to_codes
from upscaler.engine.encoder import AUTO_PRESET
from upscaler.engine.pipeline import upscale_chunk, upscale_group
from upscaler.engine.runner import Planes, Upscaler
from upscaler.media.frames import DecodedFrame
from upscaler.media.sample import make_sample_clip, render_frames
from upscaler.media.writer import EncodeSettings


@dataclass(frozen=True)
class BenchResult:
    """Frames per second for one model at one input size."""

    model: str
    scale: int
    size: str
    device: str
    runtime: str
    preset: str
    model_fps: float
    end_to_end_fps: float
    #: CPU time of the whole process (every thread) per frame: robust to other load on the
    #: machine, where wall-clock fps are not. Idle-machine fps <= cores * 1000 / cpu_ms.
    model_cpu_ms: float = 0.0
    end_to_end_cpu_ms: float = 0.0

    @property
    def efficiency(self) -> float:
        """End-to-end fps / model-only fps: how little the pipeline costs around the model."""
        return self.end_to_end_fps / self.model_fps if self.model_fps else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "efficiency": round(self.efficiency, 3)}


def sample_planes(width: int, height: int, batch: int) -> Planes:
    rgb = np.stack(render_frames(width, height, batch))
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255
    y, cb, cr = rgb_to_ycbcr(x, "bt709", full_range=False)
    return Planes(y, cb[..., ::2, ::2], cr[..., ::2, ::2])  # 4:2:0, as video is


def model_fps(upscaler: Upscaler, width: int, height: int, batch: int, seconds: float) -> float:
    """Frames per second of `upscaler.upscale` alone on 4:2:0 sample frames."""
    return _model_rates(upscaler, width, height, batch, seconds)[0]


def sample_frames(width: int, height: int, batch: int) -> list[DecodedFrame]:
    """`sample_planes` as decoded 8-bit frames, the pipeline's input."""
    planes = sample_planes(width, height, batch)
    codes = [to_codes(p, 8).numpy() for p in (planes.y, planes.cb, planes.cr)]
    return [DecodedFrame([c[i, 0] for c in codes], i, 1) for i in range(batch)]


def _model_rates(
    upscaler: Upscaler, width: int, height: int, batch: int, seconds: float
) -> tuple[float, float]:
    """(fps, CPU ms per frame) of the pipeline's model step alone (`upscale_group`: 8-bit
    planes in, integer planes out, chroma included), without decoding or encoding."""
    frames = sample_frames(width, height, batch)
    upscale_group(upscaler, frames, "bt709", False, 8)  # warm-up (and the runtime choice)
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        upscale_group(upscaler, frames, "bt709", False, 8)
        done += batch
    cpu_ms = (time.process_time() - cpu) * 1000 / done
    return done / (time.perf_counter() - started), cpu_ms


def end_to_end_fps(upscaler: Upscaler, clip: Path, batch: int, settings: EncodeSettings) -> float:
    """Frames per second of decode + upscale + encode of `clip` through `upscale_chunk`."""
    return _end_to_end_rates(upscaler, clip, batch, settings)[0]


def _end_to_end_rates(
    upscaler: Upscaler, clip: Path, batch: int, settings: EncodeSettings
) -> tuple[float, float]:
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = upscale_chunk(clip, Path(tmp) / "out.mp4", upscaler, settings, batch)
    return result.fps, (time.process_time() - cpu) * 1000 / result.frames


def run_bench(
    models: list[str],
    scale: int = 2,
    width: int = 426,
    height: int = 240,
    batch: int = 4,
    seconds: float = 3.0,
    clip_seconds: float = 4.0,
    device: str = "auto",
    settings: EncodeSettings | None = None,
    runtimes: tuple[str, ...] = ("auto",),
) -> list[BenchResult]:
    """Benchmark each model (with each CPU runtime) on the same sample frames and clip.

    The encoder preset is the pipeline's `auto` choice for the output size unless `settings`
    says otherwise."""
    settings = settings or EncodeSettings(preset="auto")
    preset = AUTO_PRESET if settings.preset == "auto" else settings.preset
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_sample_clip(Path(tmp) / "bench.mp4", width, height, clip_seconds, audio=False)
        for name in models:
            for runtime in runtimes:
                upscaler = Upscaler(name, scale, device, runtime=runtime)
                fps, cpu_ms = _model_rates(upscaler, width, height, batch, seconds)
                e2e_fps, e2e_cpu_ms = _end_to_end_rates(upscaler, clip, batch, settings)
                results.append(
                    BenchResult(
                        model=name,
                        scale=scale,
                        size=f"{width}x{height}",
                        device=str(upscaler.device),
                        runtime=upscaler.runtime.name_for(
                            (batch, upscaler.model.input_channels, height, width)
                        ),
                        preset=preset,
                        model_fps=fps,
                        end_to_end_fps=e2e_fps,
                        model_cpu_ms=cpu_ms,
                        end_to_end_cpu_ms=e2e_cpu_ms,
                    )
                )
    return results
