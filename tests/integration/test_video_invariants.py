"""The invariants of DESIGN.md on generated clips: frames, timing, audio, subtitles, colour."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.clips import ClipSpec, frame_times_of, make_clip, packets
from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.media.probe import probe

CASES = {
    "h264-25fps-audio": ClipSpec(),
    "ntsc-rate-subs-rotated": ClipSpec(rate=Fraction(30000, 1001), subtitles=True, rotation=90),
    "mkv-vfr-srt": ClipSpec(container="matroska", subtitles=True, vfr=True),
    "h265-10bit-no-audio": ClipSpec(codec="libx265", pix_fmt="yuv420p10le", audio=False),
    "odd-size-444": ClipSpec(pix_fmt="yuv444p", width=97, height=63),
    "full-range-bt601": ClipSpec(pix_fmt="yuvj420p", colour=(6, 6, 6, 2), audio=False),
    "chunks-bframes-vfr": ClipSpec(
        frames=40, gop=8, vfr=True, container="matroska", options={"bf": "3"}
    ),
}


def _cues(path):
    # MP4 muxers insert empty mov_text samples between cues; the cues themselves must match.
    return [p for p in packets(path, "subtitles") if p[1] != b"\x00\x00"]


@pytest.fixture(scope="module")
def bicubic() -> Upscaler:
    return Upscaler("bicubic", 2, "cpu")


@pytest.mark.parametrize("name", list(CASES))
def test_upscaled_video_keeps_every_invariant(name, tmp_path, bicubic):
    spec = CASES[name]
    suffix = ".mkv" if spec.container == "matroska" else ".mp4"
    src = make_clip(tmp_path / f"in{suffix}", spec)
    dst = tmp_path / f"out{suffix}"
    result = upscale_video(src, dst, bicubic, chunk_seconds=0.3)

    before, after = probe(src), probe(dst)
    assert after.video.frame_count == before.video.frame_count == spec.frames
    assert result.frames == spec.frames
    assert (after.video.width, after.video.height) == (spec.width * 2, spec.height * 2)
    assert frame_times_of(dst) == frame_times_of(src)  # every pts maps to the source's
    assert after.video.vfr == before.video.vfr == spec.vfr
    if not spec.vfr:
        assert after.video.frame_rate == spec.rate
    assert after.video.colour == before.video.colour
    assert after.video.bit_depth == before.video.bit_depth
    assert after.video.pix_fmt == before.video.pix_fmt
    assert after.video.rotation == spec.rotation
    assert packets(dst, "audio") == packets(src, "audio")  # bit-exact, same timestamps
    assert _cues(dst) == _cues(src)
    if spec.subtitles:
        assert len(_cues(dst)) == 2
    assert not list(tmp_path.glob(".*partial*"))


def test_chunked_clip_is_split_and_merged(chunked_clip, tmp_path, bicubic):
    result = upscale_video(chunked_clip, tmp_path / "out.mp4", bicubic, chunk_seconds=0.25)
    assert result.chunks == 6
    assert frame_times_of(tmp_path / "out.mp4") == frame_times_of(chunked_clip)
    assert packets(tmp_path / "out.mp4", "audio") == packets(chunked_clip, "audio")


def test_audio_stays_in_sync_within_one_frame(chunked_clip, tmp_path, bicubic):
    dst = tmp_path / "out.mp4"
    upscale_video(chunked_clip, dst, bicubic, chunk_seconds=0.25)
    frame = 1001 / 30000
    video_in, video_out = frame_times_of(chunked_clip), frame_times_of(dst)
    audio_in, audio_out = packets(chunked_clip, "audio"), packets(dst, "audio")
    assert abs((video_out[0] - audio_out[0][0]) - (video_in[0] - audio_in[0][0])) < frame
    assert abs((video_out[-1] - audio_out[-1][0]) - (video_in[-1] - audio_in[-1][0])) < frame
