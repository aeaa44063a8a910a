"""Which video encoder and preset, so that encoding never sets the pace of the model.

- On a CUDA machine whose driver can open NVENC, H.264/H.265 go to `h264_nvenc` /
  `hevc_nvenc` (PyAV's wheels include them): the GPU's encoder block leaves the CPU free and
  keeps up with 4K. Probed once per process by opening a tiny encoder; anything else (no
  driver, no GPU, a pixel format NVENC lacks, lossless, UPSCALER_NVENC=0) falls back to
  libx264/libx265.
- On the CPU, preset `auto` is x264/x265's ultrafast at every output size. With the fused
  `fast` step the encoder is a large share of a frame's CPU time (`benchmarks.stages`, per
  frame: at 1080p output veryfast 43 ms, superfast 32, ultrafast 11 against the model's
  ~60; at 480p 8.4 / 5.6 / 2.0 against ~12), so any slower preset sets the pace on two cores.
  Files are larger at the same CRF (vs veryfast: ~1.8x at 1080p, ~2.8x at 480p), not worse
  looking (closer to a lossless encode, in fact); `--preset veryfast` for smaller files.
"""

from __future__ import annotations

import os
from dataclasses import replace
from fractions import Fraction
from functools import cache

import av

from upscaler.media.probe import Colour
from upscaler.media.writer import EncodeSettings, add_video_encoder, add_video_stream

NVENC = {"libx264": "h264_nvenc", "libx265": "hevc_nvenc"}
#: Formats NVENC takes, from the formats the engine encodes in (10-bit 4:2:0 as P010).
_NVENC_PIX_FMTS = {"yuv420p": "yuv420p", "yuv444p": "yuv444p", "yuv420p10le": "p010le"}
#: The x264/x265 preset `auto` stands for on the CPU, whatever the output size.
AUTO_PRESET = "ultrafast"


@cache
def nvenc_available(encoder: str) -> bool:
    """Whether `encoder` (e.g. h264_nvenc) opens here: codec compiled in and a driver and GPU
    that accept a session."""
    try:
        ctx = av.CodecContext.create(encoder, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        with av.logging.Capture():  # FFmpeg logs why it could not load the driver
            ctx.open()
    except (av.FFmpegError, ValueError, OSError):
        return False
    return True


def choose_encoder(settings: EncodeSettings, pix_fmt: str, gpu: bool) -> str:
    """The FFmpeg encoder for `settings` and output `pix_fmt`: NVENC on a GPU when it can
    encode this, else the settings' software encoder."""
    nvenc = NVENC.get(settings.encoder)
    wanted = gpu and os.environ.get("UPSCALER_NVENC", "1") != "0"
    usable = wanted and nvenc and settings.crf > 0 and pix_fmt in _NVENC_PIX_FMTS
    return nvenc if usable and nvenc_available(nvenc) else settings.encoder


def add_encoder(
    container: av.container.OutputContainer,
    settings: EncodeSettings,
    width: int,
    height: int,
    pix_fmt: str,
    time_base: Fraction,
    frame_rate: Fraction | None,
    colour: Colour,
    sample_aspect_ratio: Fraction | None = None,
    gpu: bool = False,
) -> tuple[av.VideoStream, str]:
    """Add the video stream (NVENC or x264/x265, preset resolved) and return it with the pixel
    format frames must be given in."""
    if settings.preset == "auto":
        settings = replace(settings, preset=AUTO_PRESET)
    encoder = choose_encoder(settings, pix_fmt, gpu)
    if encoder == settings.encoder:
        stream = add_video_encoder(
            container,
            settings,
            width,
            height,
            pix_fmt,
            time_base,
            frame_rate,
            colour,
            sample_aspect_ratio,
        )
        return stream, pix_fmt
    nv_fmt = _NVENC_PIX_FMTS[pix_fmt]
    stream = add_video_stream(
        container,
        encoder,
        width,
        height,
        nv_fmt,
        time_base,
        frame_rate,
        colour,
        sample_aspect_ratio,
    )
    # constant quality (the CRF scale maps onto NVENC's cq closely enough), no bitrate cap
    stream.options = {"preset": "p4", "tune": "hq", "rc": "vbr", "cq": str(settings.crf), "b": "0"}
    return stream, nv_fmt
