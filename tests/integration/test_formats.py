"""Every family of old and broadcast footage (tests/formats.py) through `upscaler upscale`:
exact frame count, display aspect kept, audio present with the source's duration, one line
on stderr at most and never a traceback."""

from __future__ import annotations

import json

import av
import pytest

from tests.clips import ClipSpec, frame_times_of, make_clip
from tests.formats import CHAPTERS, FAMILIES, TAGS, make_family_clip, make_tagged_clip
from upscaler import cli
from upscaler.media.limits import Limits
from upscaler.media.probe import probe

BIG = Limits(max_input_pixels=1 << 40)


@pytest.fixture(scope="session")
def family_clips(tmp_path_factory):
    """Every family's clip, made once per session."""
    root = tmp_path_factory.mktemp("families")
    return {name: make_family_clip(root / f"{name}{f.suffix}", f) for name, f in FAMILIES.items()}


def audio_span(path) -> tuple[float, float]:
    """(seconds from the first audio packet's start to the last one's end, the longest
    packet): containers differ in how they store the last packet's length (Matroska rounds it
    to the default one), so durations are compared to within one packet."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        spans = [
            (p.pts * p.time_base, (p.pts + (p.duration or 0)) * p.time_base)
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]
    longest = max(end - start for start, end in spans)
    return float(max(end for _, end in spans) - min(start for start, _ in spans)), float(longest)


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
    # every frame at its source time (Matroska counts in milliseconds, and shifts the whole
    # file when AAC priming puts the audio before zero: A/V sync is what is kept)
    times, source_times = frame_times_of(out), frame_times_of(src)
    shift = times[0] - source_times[0] if before.container.startswith("mov") else 0
    assert [t - shift for t in times] == pytest.approx(source_times, abs=0.0006)
    assert (after.video.width, after.video.height) == (2 * fam.width, 2 * fam.height)
    ratio = after.video.display_aspect_ratio / before.video.display_aspect_ratio
    assert float(ratio) == pytest.approx(1, rel=0.01)
    assert len(after.audio) == 1
    (seconds, _), (expected, packet) = audio_span(out), audio_span(src)
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
