"""Safety limits for untrusted media, enforced before any heavy work starts."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what the core accepts. Override with UPSCALER_MAX_* variables."""

    max_input_bytes: int = 8 * 1024**3
    max_duration_s: float = 4 * 3600
    max_input_pixels: int = 4096 * 2304
    max_output_pixels: int = 7680 * 4320
    max_chunks: int = 10_000
    max_fps: float = 240.0
    max_images: int = 10_000  # per directory of images

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by UPSCALER_MAX_INPUT_BYTES, _DURATION_S, _INPUT_PIXELS,
        _OUTPUT_PIXELS, _CHUNKS, _FPS and _IMAGES."""
        d = cls()
        return cls(
            max_input_bytes=_env_int("UPSCALER_MAX_INPUT_BYTES", d.max_input_bytes),
            max_duration_s=_env_float("UPSCALER_MAX_DURATION_S", d.max_duration_s),
            max_input_pixels=_env_int("UPSCALER_MAX_INPUT_PIXELS", d.max_input_pixels),
            max_output_pixels=_env_int("UPSCALER_MAX_OUTPUT_PIXELS", d.max_output_pixels),
            max_chunks=_env_int("UPSCALER_MAX_CHUNKS", d.max_chunks),
            max_fps=_env_float("UPSCALER_MAX_FPS", d.max_fps),
            max_images=_env_int("UPSCALER_MAX_IMAGES", d.max_images),
        )
