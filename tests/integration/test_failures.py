"""A run that fails part-way leaves nothing under the output name, and says why."""

from __future__ import annotations

import pytest

from tests.clips import ClipSpec, make_clip
from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.errors import InputError


class Boom(RuntimeError):
    pass


def test_failure_mid_video_leaves_no_output(chunked_clip, tmp_path, monkeypatch):
    upscaler = Upscaler("bicubic", 2, "cpu")
    calls = {"n": 0}
    original = upscaler.upscale

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Boom("model crashed")
        return original(*args, **kwargs)

    monkeypatch.setattr(upscaler, "upscale", flaky)
    out = tmp_path / "out.mp4"
    with pytest.raises(Boom):
        upscale_video(chunked_clip, out, upscaler, chunk_seconds=0.25, work_dir=tmp_path / "w")
    assert not out.exists()
    assert not list(tmp_path.rglob(".*partial*"))
    # the chunks finished before the crash are kept for a resume
    assert len(list((tmp_path / "w" / "up").iterdir())) >= 1


def test_corrupt_middle_of_stream_is_reported(tmp_path):
    src = make_clip(tmp_path / "in.mkv", ClipSpec(frames=40, gop=10, container="matroska"))
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = b"\x00" * 3000
    src.write_bytes(bytes(data))
    out = tmp_path / "out.mkv"
    # The demuxer would skip the damaged frames silently: refused instead, before any work.
    with pytest.raises(InputError, match="corrupt container data"):
        upscale_video(src, out, Upscaler("bicubic", 2, "cpu"), chunk_seconds=0.2)
    assert not out.exists()
