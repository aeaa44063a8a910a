"""Real-footage evaluation: clips shrunk, compressed like real uploads, upscaled, scored.

For every clip in a folder (its first `frames` frames are the high-resolution reference):
shrink x`scale` by MATLAB bicubic (8-bit), encode the small clip with libx264 at each CRF
(CRF 0 is lossless 4:2:0; colour converted exactly, see `train.codec`), decode, upscale every
frame with each model through the product's image path (a multi-frame model gets each frame's
window of neighbours, the clip's ends repeated as in the video engine), and score against the
originals:

- PSNR-Y and SSIM-Y per frame (BT.601 luma, `scale`-pixel border cropped), mean per clip;
- tPSNR-Y: PSNR of the frame-to-frame differences (output t - output t-1 against reference
  t - reference t-1). It drops when a model adds flicker that the reference does not have.

Means over clips are reported per model and CRF; bicubic is always scored alongside.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from upscaler.engine.image import upscale_image
from upscaler.errors import InputError
from upscaler.evaluate.metrics import psnr, rgb_to_y, ssim
from upscaler.evaluate.quality import bicubic_lr
from upscaler.media.safe_open import open_media
from upscaler.models import SRModel, load_model
from upscaler.train.codec import CodecChoice, encode_decode

CLIP_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".y4m", ".nut")
METRICS = ("psnr_y", "ssim_y", "tpsnr_y")


def find_clips(clip_dir: str | Path) -> list[Path]:
    """The video files of a folder, sorted; an InputError when there are none."""
    root = Path(clip_dir)
    if not root.is_dir():
        raise InputError(f"{clip_dir}: not a directory of clips")
    clips = sorted(p for p in root.iterdir() if p.suffix.lower() in CLIP_SUFFIXES)
    if not clips:
        raise InputError(f"{clip_dir}: no clips ({', '.join(CLIP_SUFFIXES)})")
    return clips


def read_clip(path: Path, frames: int, multiple: int) -> np.ndarray:
    """The first `frames` frames as uint8 [T,H,W,3] RGB, cropped to multiples of `multiple`."""
    out = []
    with open_media(path) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    if len(out) < 2:
        raise InputError(f"{path}: needs at least 2 frames for tPSNR, has {len(out)}")
    clip = np.stack(out)
    h, w = clip.shape[1:3]
    return clip[:, : h - h % multiple, : w - w % multiple]


def _db(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def temporal_errors(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> np.ndarray:
    """Per frame pair: mean squared error of the luma frame-to-frame differences."""
    a = np.stack([rgb_to_y(f) for f in sr])
    b = np.stack([rgb_to_y(f) for f in hr])
    if shave:
        a, b = a[:, shave:-shave, shave:-shave], b[:, shave:-shave, shave:-shave]
    return np.mean((np.diff(a, axis=0) - np.diff(b, axis=0)) ** 2, axis=(1, 2))


def tpsnr_y(sr: np.ndarray, hr: np.ndarray, shave: int = 0) -> float:
    """PSNR (dB) of the frame-to-frame differences of luma, uint8 [T,H,W,3] clips."""
    return _db(float(np.mean(temporal_errors(sr, hr, shave))))


def score_clip(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, Any]:
    """PSNR-Y, SSIM-Y (means over frames), tPSNR-Y and per-frame PSNR-Y of one clip."""
    per_frame = [psnr(s, h, scale) for s, h in zip(sr, hr, strict=True)]
    per_pair = temporal_errors(sr, hr, scale)
    return {
        "psnr_y": float(np.mean(per_frame)),
        "ssim_y": float(np.mean([ssim(s, h, scale) for s, h in zip(sr, hr, strict=True)])),
        "tpsnr_y": _db(float(np.mean(per_pair))),
        "frame_psnr_y": [round(v, 3) for v in per_frame],
        "pair_tpsnr_y": [round(_db(float(e)), 3) for e in per_pair],
    }


def degrade(hr: np.ndarray, scale: int, crf: int) -> np.ndarray:
    """Bicubic x1/`scale` (8-bit), then one libx264 clip at `crf` (yuv420p, preset medium,
    default GOP), decoded; exact colour conversion both ways (see `train.codec`)."""
    lr = np.stack([bicubic_lr(frame, scale) for frame in hr])
    return encode_decode(lr, CodecChoice("h264", crf=crf, gop=None, preset="medium"))


def upscale_clip(lr: np.ndarray, net: SRModel) -> np.ndarray:
    """Every frame of a uint8 [T,H,W,3] clip upscaled; a window model reads frames t-r..t+r
    (indices clamped to the clip, as `engine.window` repeats the ends of a video)."""
    r = net.window // 2
    out = []
    for t, frame in enumerate(lr):
        window = lr[np.clip(np.arange(t - r, t + r + 1), 0, len(lr) - 1)] if r else None
        out.append(upscale_image(frame, net, window))
    return np.stack(out)


def evaluate_footage(
    models: list[str], scale: int, clip_dir: str | Path, crfs: list[int], frames: int = 16
) -> dict[str, Any]:
    """Scores of every model (bicubic first, always) on every clip at every CRF.

    Returns {"scale", "crfs", "frames", "clips", "seconds", "results": {model: {crf:
    {"psnr_y", "ssim_y", "tpsnr_y" (means over clips), "clips": [per-clip rows]}}}}."""
    names = ["bicubic", *(m for m in models if m != "bicubic")]
    nets = {name: load_model(name, scale) for name in names}  # bad names fail before work
    clips = find_clips(clip_dir)
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    for crf in crfs:
        rows: dict[str, list[dict]] = {name: [] for name in names}
        for path in clips:
            hr = read_clip(path, frames, 2 * scale)  # even LR sizes for 4:2:0
            lr = degrade(hr, scale, crf)
            for name, net in nets.items():
                sr = upscale_clip(lr, net)
                rows[name].append({"clip": path.stem, **score_clip(sr, hr, scale)})
        for name in names:
            means = {k: float(np.mean([r[k] for r in rows[name]])) for k in METRICS}
            results[name][str(crf)] = {**means, "clips": rows[name]}
    return {
        "scale": scale,
        "crfs": crfs,
        "frames": frames,
        "clips": [p.stem for p in clips],
        "seconds": round(time.perf_counter() - t0, 2),
        "results": results,
    }


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: one row per model and CRF, means over clips, gains vs bicubic."""
    lines = [f"{'model':<16}{'CRF':>4}{'PSNR-Y':>9}{'vs bic':>8}{'SSIM-Y':>8}{'tPSNR-Y':>9}"]
    base = result["results"]["bicubic"]
    for name, by_crf in result["results"].items():
        for crf, row in by_crf.items():
            gain = row["psnr_y"] - base[crf]["psnr_y"]
            lines.append(
                f"{name:<16}{crf:>4}{row['psnr_y']:>9.2f}{gain:>+8.2f}"
                f"{row['ssim_y']:>8.4f}{row['tpsnr_y']:>9.2f}"
            )
    clips = ", ".join(result["clips"])
    lines.append(f"x{result['scale']}, {result['frames']} frames of each clip: {clips}")
    return "\n".join(lines)


def write_lossless_clip(frames: np.ndarray, path: str | Path, fps: int = 25) -> None:
    """uint8 [T,H,W,3] RGB -> an FFV1 (lossless RGB) Matroska clip: a reference for `eval`."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
