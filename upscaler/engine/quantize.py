"""int8 `fast`: post-training static quantization with ONNX Runtime, built once and cached.

Two of the three 32->32 body convolutions (body.2, body.4) are quantized: int8 weights per
output channel, uint8 activations (they follow ReLUs) with ranges at the 99.99th percentile
of calibration activations. The first conv (4 channels in), the third 32->32 one, the last
(the residual the output is made of) and the fixed bicubic skip stay float. Measured on Set5
x2: two convs -0.029 dB, three -0.067, all five -0.12 to -0.18; CPU per 960x540 frame
~11 % below ONNX Runtime fp32 with two, ~20 % with three (docs/BENCHMARKS.md).

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

#: float convolutions (ONNX names): the skip, body.0, body.6 and body.8 of `fast`.
_KEEP_FLOAT = ("/Conv", "/body/body.0/Conv", "/body/body.6/Conv", "/body/body.8/Conv")
#: in the cached file's name: a changed recipe never reuses an old file
_RECIPE = "int8v2"
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
    out = cache_dir() / "onnx" / f"{model_key(model)}.{_RECIPE}.onnx"
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
