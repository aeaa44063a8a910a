"""The bad-input corpus: deterministic files that a video upscaler meets in the wild.

Every case is generated from code (nothing binary is committed): `build(dir)` writes the
files and returns what each one must do. `scripts/make_bad_corpus.py` writes the same corpus
to `tests/data/bad/` for manual poking (`upscaler probe tests/data/bad/...`).

A case is either *refused* (a one-line error with an exit code, no output) or *valid but
odd* (it must produce a correct output: frame count kept, size multiplied by the scale).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.clips import ClipSpec, make_clip

EXIT_INPUT, EXIT_LIMIT, EXIT_MEDIA = 2, 3, 6


@dataclass(frozen=True)
class Case:
    """One corpus file and its expected outcome."""

    name: str
    path: Path
    exit_code: int  # 0: valid, must upscale; else the CLI's exit code
    words: str = ""  # a fragment the one-line error must contain
    frames: int = 0  # for valid cases: the frame count the output must have
    size: tuple[int, int] = (0, 0)  # for valid cases: the input width, height
    env: tuple[tuple[str, str], ...] = ()  # extra environment (limits) for this case

    @property
    def valid(self) -> bool:
        return self.exit_code == 0


def _odd_clip(path: Path, width: int, height: int, frames: int, codec: str, pix_fmt: str) -> Path:
    """A clip of any size (x264 needs even sizes in 4:2:0, so odd ones use other codecs)."""
    fmt = "matroska" if path.suffix == ".mkv" else "mp4"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        rng = np.random.default_rng(width * 1000 + height)
        for i in range(frames):
            rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _timed_clip(path: Path, pts: list[int], time_base: Fraction) -> Path:
    """A small H.264 MP4 whose frames sit at the given pts (extreme duration / rate claims)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for t in pts:
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 90, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = t, time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _big_clip(path: Path, width: int, height: int) -> Path:
    """One black frame at a large size: a tiny file that declares a huge picture."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            np.frombuffer(plane, np.uint8)[:] = 16
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _mjpeg_avi_claiming(path: Path, width: int, height: int) -> Path:
    """A 16x16 MJPEG AVI whose headers (AVI and JPEG) are patched to claim width x height."""
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuvj420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 100, np.uint8), "rgb24")
            frame = frame.reformat(format="yuvj420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    # avih (main header), strh frame rect and strf BITMAPINFOHEADER carry the size
    avih = data.find(b"avih") + 8
    struct.pack_into("<II", data, avih + 32, width, height)
    strf = data.find(b"strf") + 8
    struct.pack_into("<ii", data, strf + 4, width, height)
    sof = 0
    while (sof := data.find(b"\xff\xc0", sof + 1)) != -1:  # every JPEG SOF0 marker
        struct.pack_into(">HH", data, sof + 5, height & 0xFFFF, width & 0xFFFF)
    path.write_bytes(bytes(data))
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=48000, layout="mono")
        for start in range(0, 48000, 1024):
            wave = np.zeros((1, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def _zero_frames(path: Path) -> Path:
    """A video stream with no packets (plus audio, so the container is not empty)."""
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="mono")
        for start in range(0, 4096, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
        out.mux(video.encode(None))
    return path


def _png(path: Path, width: int = 8, height: int = 8) -> Path:
    from PIL import Image

    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(path, format="PNG")
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid-looking PNG whose IHDR claims width x height (a decompression bomb header)."""
    import zlib

    data = bytearray(_png(path).read_bytes())
    ihdr = data.find(b"IHDR")
    struct.pack_into(">II", data, ihdr + 4, width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    struct.pack_into(">I", data, ihdr + 17, crc)
    path.write_bytes(bytes(data))
    return path


def resolution_change_ts(path: Path, tmp: Path) -> Path:
    """MPEG-TS whose H.264 stream switches from 32x32 to 64x48 mid-stream (a new SPS):
    the headers declare the small size, the decoder meets the larger one."""
    parts = []
    for i, (w, h) in enumerate(((32, 32), (64, 48))):
        part = tmp / f".res{i}.ts"
        with av.open(str(part), "w", format="mpegts") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast", "bf": "0"}
            for j in range(4):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 60, np.uint8), "rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = j
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        parts.append(part)
    with av.open(str(parts[0])) as first, av.open(str(path), "w", format="mpegts") as out:
        template = first.streams.video[0]
        stream = out.add_stream_from_template(template)
        offset = 0
        for part in parts:
            with av.open(str(part)) as src:
                last = 0
                for packet in src.demux(src.streams.video[0]):
                    if not packet.size:
                        continue
                    packet.pts += offset
                    packet.dts += offset
                    last = max(last, packet.pts + (packet.duration or 3600))
                    packet.stream = stream
                    out.mux(packet)
                offset = last
    for part in parts:
        part.unlink()
    return path


def build(out: Path, base: Path | None = None) -> list[Case]:
    """Write the corpus into `out` and return its cases (deterministic for a given build)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    base = base or make_clip(out / "valid base.mp4", ClipSpec(frames=12, gop=4))
    good = base.read_bytes()
    ts = make_clip(out / "valid base.ts", ClipSpec(frames=12, gop=4, container="mpegts"))
    cases: list[Case] = []

    def write(name: str, data: bytes) -> Path:
        path = out / name
        path.write_bytes(data)
        return path

    def refused(name: str, path: Path, code: int, words: str, **kw) -> None:
        cases.append(Case(name, path, code, words, **kw))

    refused("empty", write("empty.mp4", b""), EXIT_INPUT, "file is empty")
    refused("random", write("random.mp4", rng.randbytes(20_000)), EXIT_INPUT, "not a supported")
    refused("zeros", write("zeros.mp4", bytes(20_000)), EXIT_INPUT, "")
    for pct in (10, 50, 90):
        cut = good[: len(good) * pct // 100]
        refused(f"truncated-{pct}", write(f"truncated_{pct}.mp4", cut), EXIT_INPUT, "")
    for pct in (10, 50, 90):  # a streamable container cut short is a shorter video, or refused
        data = ts.read_bytes()
        cut = data[: len(data) * pct // 100]
        cases.append(Case(f"truncated-ts-{pct}", write(f"truncated_{pct}.ts", cut), -1))
    middle = bytearray(good)
    mid = len(middle) // 2
    middle[mid : mid + 1500] = rng.randbytes(1500)
    cases.append(Case("corrupt-middle", write("corrupt_middle.mp4", bytes(middle)), -1))
    refused("text", write("notes.mp4", b"hello, this is not a video\n" * 200), EXIT_INPUT, "")
    refused("png-as-mp4", _png(out / "picture.mp4"), EXIT_INPUT, "not a supported video")
    refused("audio-only", _audio_only(out / "audio_only.mp4"), EXIT_INPUT, "no video stream")
    refused("zero-frames", _zero_frames(out / "zero_frames.mkv"), EXIT_INPUT, "")
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile://{p}\n#EXTINF:1,\n/etc/passwd\n"
    refused("hls", write("playlist.mp4", hls.format(p=base).encode()), EXIT_INPUT, "")
    refused("hls-m3u8", write("playlist.m3u8", hls.format(p=base).encode()), EXIT_INPUT, "")
    concat = f"ffconcat version 1.0\nfile '{base}'\nfile '/etc/passwd'\n"
    refused("ffconcat", write("list.mp4", concat.encode()), EXIT_INPUT, "")
    refused("ffconcat-txt", write("list.ffconcat", concat.encode()), EXIT_INPUT, "")
    refused(
        "huge-declared",
        _mjpeg_avi_claiming(out / "huge_declared.avi", 16000, 16000),
        EXIT_LIMIT,
        "over the limit",
    )
    refused(
        "over-pixel-limit",
        _big_clip(out / "big_frame.mp4", 4160, 2336),
        EXIT_LIMIT,
        "over the limit",
    )
    refused(
        "long-claim",  # two frames ten hours apart
        _timed_clip(out / "ten_hours.mp4", [0, 36000], Fraction(1, 1)),
        EXIT_LIMIT,
        "over the limit",
    )
    refused(
        "fast-claim",  # 50 frames 1/10000 s apart: 10000 fps
        _timed_clip(out / "ten_kfps.mp4", list(range(50)), Fraction(1, 10000)),
        EXIT_LIMIT,
        "fps is over",
    )
    refused(
        "unparsable-declared",  # "60000x60000": FFmpeg itself rejects the size
        _mjpeg_avi_claiming(out / "unparsable_declared.avi", 60000, 60000),
        EXIT_INPUT,
        "no valid frame size",
    )
    lying = _mjpeg_avi_claiming(out / "lying_header.avi", 4000, 2000)  # headers lie, in limit
    cases.append(Case("lying-header", lying, -1))
    cases.append(Case("resolution-change", resolution_change_ts(out / "res_change.ts", out), -1))
    # valid but odd: each must come out right
    for name, w, h, codec, fmt in (
        ("1x1", 1, 1, "ffv1", "yuv444p"),
        ("odd-444", 33, 17, "ffv1", "yuv444p"),
        ("odd-420", 35, 21, "mpeg4", "yuv420p"),
        ("2x2-h264", 2, 2, "libx264", "yuv420p"),
    ):
        path = _odd_clip(out / f"odd_{name}.mkv", w, h, 5, codec, fmt)
        cases.append(Case(name, path, 0, frames=5, size=(w, h)))
    for name in ("with space é.mp4", "ünïcödé 视频.mp4", "-leading-dash.mp4"):
        path = write(name, good)
        cases.append(Case(f"name:{name}", path, 0, frames=12, size=(96, 64)))
    return cases
