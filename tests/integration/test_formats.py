"""Every family of old and broadcast footage (tests/formats.py) through `upscaler upscale`:
exact frame count, display aspect kept, audio present with the source's duration, one line
on stderr at most and never a traceback."""

from __future__ import annotations

import json
from dataclasses import replace

import av
import pytest

from tests.clips import ClipSpec, frame_times_of, make_clip
from tests.formats import (
    CHAPTERS,
    FAMILIES,
    TAGS,
    audio_span,
    audio_start,
    make_family_clip,
    make_tagged_clip,
)
from upscaler import cli
from upscaler.media.chunks import plan_chunks
from upscaler.media.limits import Limits
from upscaler.media.probe import probe, probe_with_packets

BIG = Limits(max_input_pixels=1 << 40)


@pytest.fixture(scope="session")
def family_clips(tmp_path_factory):
    """Every family's clip, made once per session."""
    root = tmp_path_factory.mktemp("families")
    return {name: make_family_clip(root / f"{name}{f.suffix}", f) for name, f in FAMILIES.items()}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_round_trips(name, family_clips, tmp_path, capsys, caplog):
    fam, src = FAMILIES[name], family_clips[name]
    before = probe(src)
    assert before.video.frame_count == fam.frames
    assert float(before.video.display_aspect_ratio) == pytest.approx(fam.display_aspect, rel=0.01)

    out = tmp_path / "out.mkv"
    code = cli.main(["upscale", str(src), "-o", str(out), "--scale", "2", "--model", "bicubic"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) <= 1, notices  # at most: audio transcoded, or video deinterlaced
    if fam.audio == "wmav2":
        assert "transcoding it to AAC 192 kb/s" in notices[0]

    after = probe(out, BIG)
    assert after.video.frame_count == fam.frames
    assert after.video.frame_rate == fam.rate, before.video.frame_rate  # was 1 / time base
    # every frame at its source time (Matroska counts in milliseconds), and the audio where
    # the source's is, below zero where AAC priming puts it (the 3GP clip: -64 ms)
    assert frame_times_of(out) == pytest.approx(frame_times_of(src), abs=0.0006)
    assert (after.video.width, after.video.height) == (2 * fam.width, 2 * fam.height)
    ratio = after.video.display_aspect_ratio / before.video.display_aspect_ratio
    assert float(ratio) == pytest.approx(1, rel=0.01)
    assert len(after.audio) == 1
    (seconds, _), (expected, packet) = audio_span(out), audio_span(src)
    # transcoded audio starts with the AAC encoder's own priming (stated as the CodecDelay)
    priming = 1024 / fam.audio_rate if fam.audio == "wmav2" else 0
    assert audio_start(out) == pytest.approx(audio_start(src) - priming, abs=0.0006)
    assert seconds == pytest.approx(expected, abs=packet)


def test_probe_shows_sar_and_dar(family_clips, capsys):
    src = family_clips["dvd-mpeg2-ps-ac3"]
    assert cli.main(["probe", str(src)]) == 0
    assert "SAR 40:33, DAR 16:9 (1.778)" in capsys.readouterr().out
    assert cli.main(["probe", str(src), "--json"]) == 0
    video = json.loads(capsys.readouterr().out)["video"]
    assert (video["sample_aspect_ratio"], video["display_aspect_ratio"]) == ("40/33", "16/9")


def test_audio_the_output_cannot_hold_is_transcoded(family_clips, tmp_path, capsys, caplog):
    """PCM fits Matroska but not MP4: copied into .mkv (above), AAC in .mp4."""
    src, out = family_clips["dv-avi-pcm"], tmp_path / "out.mp4"
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic"]) == 0
    assert "audio stream #1 (pcm_s16le) cannot be stored in .mp4" in caplog.text
    after = probe(out, BIG)
    assert [a.codec for a in after.audio] == ["aac"]
    (seconds, _), (expected, packet) = audio_span(out), audio_span(src)
    assert seconds == pytest.approx(expected, abs=packet + 1024 / 48000)


def test_subtitles_the_output_cannot_hold_are_refused(tmp_path, capsys):
    src = make_clip(tmp_path / "subs.mkv", ClipSpec(container="matroska", subtitles=True))
    out = tmp_path / "out.mp4"
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic"]) == 5
    err = capsys.readouterr().err.strip()
    assert err.endswith("subtitle stream #1 (subrip) cannot be stored in .mp4; write .mkv instead")
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_metadata_is_carried(suffix, tmp_path, capsys, caplog):
    src, out = make_tagged_clip(tmp_path / "tagged.mov"), tmp_path / f"out{suffix}"
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic"]) == 0
    with av.open(str(out)) as container:
        assert {k: container.metadata.get(k) for k in TAGS} == TAGS
        chapters = [
            (round(c["start"] * c["time_base"] * 1000), round(c["end"] * c["time_base"] * 1000),
             c["metadata"]["title"])
            for c in container.chapters()
        ]  # fmt: skip
        assert chapters == CHAPTERS
        assert container.streams.audio[0].metadata["language"] == "fra"
        video_tags = {k.lower(): v for k, v in container.streams.video[0].metadata.items()}
    if suffix == ".mkv":
        assert video_tags["timecode"] == "01:00:00:00"
    else:
        assert "timecode is not carried into MP4/MOV" in caplog.text


@pytest.mark.parametrize(
    ("name", "open_gop"),
    [("dvd-mpeg2-ps-ac3", True), ("xvid-avi-mp3", True), ("ts-mpeg2-interlaced-ac3", False)],
)
def test_open_gops_cut_into_chunks_lose_no_frame(name, open_gop, tmp_path, capsys):
    """Open GOPs (DVD, Xvid): the B-frames after a keyframe are shown before it and predicted
    from the previous GOP, so they go with the previous chunk, which carries the keyframe as a
    reference and drops it from its output."""
    fam = replace(FAMILIES[name], frames=18, options={**FAMILIES[name].options, "g": "6"})
    src, out = make_family_clip(tmp_path / f"long{fam.suffix}", fam), tmp_path / "out.mkv"
    info, packets = probe_with_packets(src)
    chunks = plan_chunks(info, packets, seconds=0.2)
    assert len(chunks) >= 3 and sum(c.frame_count for c in chunks) == 18
    assert any(c.packets > c.frame_count for c in chunks) == open_gop
    args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--chunk-seconds", "0.2"]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert probe(out, BIG).video.frame_count == 18
    assert frame_times_of(out) == pytest.approx(frame_times_of(src), abs=0.0006)


def test_field_rate_across_open_gop_chunks(tmp_path, capsys):
    """Each chunk's last frame gives two fields too, at distinct times, whatever bwdif knows
    of its duration."""
    fam = replace(FAMILIES["xvid-avi-mp3"], frames=18, options={"bf": "2", "g": "6"})
    src, out = make_family_clip(tmp_path / "long.avi", fam), tmp_path / "out.mp4"
    args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--chunk-seconds", "0.2",
            "--deinterlace", "field"]  # fmt: skip
    assert cli.main(args) == 0, capsys.readouterr().err
    expected = [t + half for t in frame_times_of(src) for half in (0, 0.02)]
    assert frame_times_of(out) == pytest.approx(expected, abs=1e-6)


def test_recording_cut_mid_gop_drops_only_the_undecodable_frames(tmp_path, capsys):
    """A VOB cut at its second keyframe starts with an open GOP: the B-frames shown before
    that keyframe need the GOP that was cut off. Probe does not count them; the rest comes out."""
    fam = replace(FAMILIES["dvd-mpeg2-ps-ac3"], frames=18, options={"bf": "2", "g": "6"})
    whole, cut = make_family_clip(tmp_path / "whole.vob", fam), tmp_path / "cut.vob"
    with av.open(str(whole)) as src, av.open(str(cut), "w", "dvd") as out:
        stream = out.add_stream_from_template(src.streams.video[0], opaque=True)
        keyframes = 0
        for packet in src.demux(src.streams.video[0]):
            keyframes += packet.is_keyframe
            if packet.size and keyframes >= 2:
                packet.stream = stream
                out.mux(packet)
    with av.open(str(cut)) as container:
        decodable = sum(1 for _ in container.decode(video=0))
    assert probe(cut).video.frame_count == decodable < len(probe_with_packets(cut)[1])
    out = tmp_path / "out.mkv"
    args = ["upscale", str(cut), "-o", str(out), "--model", "bicubic", "--chunk-seconds", "0.2"]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert probe(out, BIG).video.frame_count == decodable


def test_damaged_audio_being_transcoded_is_skipped_with_a_notice(family_clips, tmp_path, caplog):
    """A WMV cut short: the last WMA packet does not decode; the rest comes out."""
    data = family_clips["wmv-asf-wma"].read_bytes()
    src, out = tmp_path / "cut.wmv", tmp_path / "out.mkv"
    src.write_bytes(data[: len(data) * 35 // 100])
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic"]) == 0
    assert "damaged audio packet(s)" in caplog.text
    assert probe(out, BIG).video.frame_count == probe(src).video.frame_count
    assert len(probe(out, BIG).audio) == 1


def test_a_codec_ffmpeg_does_not_know_is_one_line(family_clips, tmp_path, capsys):
    """An AVI whose video FourCC no decoder claims (MJPG renamed): refused at probe, exit 2."""
    src, out = tmp_path / "unknown.avi", tmp_path / "out.mkv"
    src.write_bytes(family_clips["mjpeg-avi-pcm"].read_bytes().replace(b"MJPG", b"ZQZQ"))
    assert cli.main(["upscale", str(src), "-o", str(out), "--model", "bicubic"]) == 2
    err = capsys.readouterr().err
    reason = "the video stream's codec is unknown (no decoder in this build)"
    assert err == f"upscaler: error: {src}: {reason}\n"
    assert not out.exists()
