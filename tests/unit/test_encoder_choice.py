"""Encoder choice: NVENC only where it opens, the x264 preset by output size."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from upscaler.engine import encoder
from upscaler.engine.encoder import AUTO_PRESET, add_encoder, choose_encoder, nvenc_available
from upscaler.media.probe import Colour
from upscaler.media.writer import EncodeSettings

COLOUR = Colour(1, 1, 1, 1)


@pytest.mark.parametrize("size", [(852, 480), (1920, 1080)])
def test_auto_preset_on_the_cpu_whatever_the_size(tmp_path, size):
    """x264's cost per frame is a large share of the `fast` step's at every output size."""
    with av.open(str(tmp_path / "o.mp4"), "w") as out:
        stream, _ = add_encoder(
            out, EncodeSettings(preset="auto"), *size, "yuv420p", Fraction(1, 25), None, COLOUR
        )
        assert stream.options["preset"] == AUTO_PRESET == "ultrafast"


def test_no_nvenc_without_a_driver_falls_back_to_x264(tmp_path):
    """This machine has PyAV's NVENC encoders compiled in but no NVIDIA driver."""
    assert "h264_nvenc" in av.codecs_available
    assert not nvenc_available("h264_nvenc")
    settings = EncodeSettings(preset="auto")
    assert choose_encoder(settings, "yuv420p", gpu=True) == "libx264"
    with av.open(str(tmp_path / "o.mp4"), "w") as out:
        stream, fmt = add_encoder(
            out, settings, 1920, 1080, "yuv420p", Fraction(1, 25), Fraction(25), COLOUR, gpu=True
        )
        assert stream.codec_context.name == "libx264" and fmt == "yuv420p"
        assert stream.options["preset"] == "ultrafast"


@pytest.mark.parametrize(
    ("codec", "crf", "pix_fmt", "expected"),
    [
        ("h264", 18, "yuv420p", ("h264_nvenc", "yuv420p")),
        ("h265", 18, "yuv420p10le", ("hevc_nvenc", "p010le")),
        ("h264", 0, "yuv420p", ("libx264", "yuv420p")),  # lossless: x264
        ("h264", 18, "yuv422p", ("libx264", "yuv422p")),  # no 4:2:2 in NVENC
    ],
)
def test_nvenc_where_it_opens(codec, crf, pix_fmt, expected, monkeypatch, tmp_path):
    """With a driver (simulated by the probe's answer) H.264/H.265 go to NVENC; the stream is
    set up with its options, pixel format and colour tags without opening the encoder."""
    monkeypatch.setattr(encoder, "nvenc_available", lambda name: True)
    settings = EncodeSettings(codec=codec, crf=crf)
    assert not choose_encoder(settings, pix_fmt, gpu=False).endswith("nvenc")
    with av.open(str(tmp_path / "o.mp4"), "w") as out:
        stream, fmt = add_encoder(
            out, settings, 640, 360, pix_fmt, Fraction(1, 25), Fraction(25), COLOUR, gpu=True
        )
        assert (stream.codec_context.name, fmt) == expected
        if expected[0].endswith("nvenc"):
            assert stream.options["cq"] == str(crf) and stream.pix_fmt == fmt
            assert stream.codec_context.colorspace == 1


def test_nvenc_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(encoder, "nvenc_available", lambda name: True)
    monkeypatch.setenv("UPSCALER_NVENC", "0")
    assert choose_encoder(EncodeSettings(), "yuv420p", gpu=True) == "libx264"
