"""The model `upscale` uses when none is named: picked from the source stream itself.

Compressed video (most uploads, phone clips, streams) gets the model fine-tuned on
shrunk-then-encoded clips (real codecs over groups of frames); a lossless or near-lossless
source (an intra/lossless codec, or many bits per pixel) gets the clean-trained model, which
is sharper on clean input. Bits per pixel come from the file size over the video's pixels: an
upper bound (audio and container included), so a doubtful source counts as clean only when it
is clearly rich.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from upscaler.media.probe import MediaInfo
from upscaler.models.registry import shipped_weights_path

CLEAN_MODEL = "fast"
BLIND_MODEL = "fast-video"
LOSSLESS_CODECS = frozenset(
    {"ffv1", "ffvhuff", "huffyuv", "magicyuv", "png", "qtrle", "rawvideo", "utvideo", "v210"}
)
# x264 (preset medium) on the 320x180 dev clips: CRF 0 (lossless) 1.9-3.1 bits per pixel,
# CRF 12 0.17-0.56, CRF 18 0.07-0.29, CRF 23 0.05-0.17, CRF 28 0.04-0.10. Only a source
# above this is close enough to lossless for the clean-trained model.
CLEAN_BPP = 1.0


@dataclass(frozen=True)
class ModelChoice:
    """The chosen model name and why, for `probe` and `upscale --json`."""

    model: str
    reason: str
    bits_per_pixel: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bits_per_pixel(info: MediaInfo) -> float | None:
    """File bits per video pixel per frame (None when the frame count is unknown)."""
    v = info.video
    pixels = v.width * v.height * v.frame_count
    return round(8 * info.size_bytes / pixels, 4) if pixels > 0 else None


def choose_model(info: MediaInfo | None, scale: int) -> ModelChoice:
    """The default model at `scale` for a probed video, or for still images (`info` None)."""
    choice = _choose(info)
    if choice.model == BLIND_MODEL and shipped_weights_path(BLIND_MODEL, scale) is None:
        reason = f"{choice.reason}; {BLIND_MODEL} has no x{scale} weights"
        return ModelChoice(CLEAN_MODEL, reason, choice.bits_per_pixel)
    return choice


def _choose(info: MediaInfo | None) -> ModelChoice:
    if info is None:
        return ModelChoice(BLIND_MODEL, "still image: JPEG or PNG, either may be compressed")
    codec = info.video.codec
    bpp = bits_per_pixel(info)
    if codec in LOSSLESS_CODECS:
        return ModelChoice(CLEAN_MODEL, f"lossless codec {codec}", bpp)
    if bpp is not None and bpp >= CLEAN_BPP:
        return ModelChoice(CLEAN_MODEL, f"{codec} at {bpp:.2f} bits/pixel: near lossless", bpp)
    detail = f"{bpp:.2f} bits/pixel" if bpp is not None else "unknown bitrate"
    return ModelChoice(BLIND_MODEL, f"{codec} at {detail}: compressed", bpp)
