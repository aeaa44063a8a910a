"""int8 `fast`: post-training static quantization with ONNX Runtime, built once and cached.

Only the three 32->32 body convolutions (most of the multiply-adds) are quantized: int8
weights per output channel, uint8 activations (they follow ReLUs) with ranges at the 99.99th
percentile of calibration activations. The first conv (4 channels in), the last (the residual
the output is made of) and the fixed bicubic skip stay float: quantizing those costs more
PSNR than it saves time. Measured cost and speed: docs/BENCHMARKS.md.

Calibration frames are the shipped sample photo (`upscaler.media.sample`, a Debian wallpaper),
rendered along its camera path: never an evaluation set.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch

from upscaler.engine.colour import rgb_to_ycbcr
from upscaler.engine.onnx_runtime import _atomic_write, cache_dir, export_onnx, model_key
from upscaler.media.sample import render_frames
from upscaler.models.base import SRModel

#: float convolutions: the skip, the first and the last conv of `fast`'s body (ONNX names).
_KEEP_FLOAT = ("/Conv", "/body/body.0/Conv", "/body/body.8/Conv")
_PERCENTILE = 99.99


def calibration_batches(channels: str, count: int = 30) -> list[np.ndarray]:
    """[1, C, 240, 320] float32 frames of the sample clip in the engine's domain."""
    batches = []
    for rgb in render_frames(320, 240, count * 2)[::2]:
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        if channels == "y":
            x = rgb_to_ycbcr(x, "bt601", full_range=False)[0]
        batches.append(x.numpy())
    return batches


def quantize_int8(model: SRModel) -> Path:
    """The int8 ONNX file of `model` (a `fast` net), built on first use."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
    )
    from onnxruntime.quantization import (
        quantize_static as _quantize,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if type(model).__name__ != "FastSR":
        raise ValueError("int8 is built for the `fast` architecture only")
    out = cache_dir() / "onnx" / f"{model_key(model)}.int8.onnx"
    if out.is_file():
        return out
    fp32 = export_onnx(model)
    batches = iter(calibration_batches(model.channels))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(batches, None)
            return None if batch is None else {"x": batch}

    work = out.with_name(f".{out.stem}.work")
    work.mkdir(parents=True, exist_ok=True)
    pre, quantized = work / "pre.onnx", work / "int8.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    with contextlib.redirect_stdout(io.StringIO()):  # its calibration progress prints
        _quantize(
            str(pre),
            str(quantized),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=list(_KEEP_FLOAT),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": _PERCENTILE},
        )
    _atomic_write(out, quantized.read_bytes())
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    return out
