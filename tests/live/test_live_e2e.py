"""`upscaler live` end to end over loopback: the page, the stats, the MJPEG streams, and the
MPEG-TS written to stdout."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import av
import pytest
from PIL import Image

from upscaler.errors import InputError
from upscaler.live.server import parse_bind

pytestmark = pytest.mark.slow


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def mjpeg_frames(url: str, count: int, timeout: float = 20.0) -> list[tuple[float, bytes]]:
    """Read `count` parts of a multipart/x-mixed-replace stream: (arrival time, JPEG)."""
    frames = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        for _ in range(count * 4):  # bounded: headers + body per part
            if len(frames) == count or time.monotonic() > deadline:
                break
            line = response.readline()
            if not line.lower().startswith(b"content-length:"):
                continue
            length = int(line.split(b":")[1])
            response.readline()  # blank line
            frames.append((time.monotonic(), response.read(length)))
    return frames


def test_serve_page_stats_and_streams_at_the_source_rate(live_clip, live_process):
    live = live_process(
        str(live_clip), "--serve", "127.0.0.1:0", "--loop", "--duration", "6", "--threads", "1"
    )
    url = live.wait_for("live: serving").split()[-1]
    assert url.startswith("http://127.0.0.1:")

    page = get(url).decode()
    assert "/original.mjpg" in page and "/enhanced.mjpg" in page and "/stats" in page

    frames = mjpeg_frames(url + "enhanced.mjpg", 30)
    assert len(frames) == 30
    span = frames[-1][0] - frames[0][0]
    rate = (len(frames) - 1) / span
    assert 12 <= rate <= 40, f"{rate:.1f} fps over loopback for a 25 fps source"
    assert Image.open(io.BytesIO(frames[-1][1])).size == (320, 192)

    original = mjpeg_frames(url + "original.mjpg", 2)
    assert Image.open(io.BytesIO(original[-1][1])).size == (160, 96)

    stats = json.loads(get(url + "stats"))
    for key in ("fps_in", "fps_out", "enhanced", "degraded", "dropped", "latency_ms"):
        assert key in stats
    assert stats["frames_in"] > 0 and stats["finished"] is False
    assert 15 <= stats["fps_in"] <= 35

    summary = live.summary()
    assert summary["frames_in"] == 150  # 6 s of a 25 fps clip looped
    assert summary["frames_out"] + summary["dropped"] == summary["frames_in"]
    assert summary["latency_ms"]["max"] <= 1000  # bounded, whatever the machine's load


def test_out_writes_mpegts_with_every_frame_and_the_audio(live_clip, live_process, tmp_path):
    out = tmp_path / "out.ts"
    with out.open("wb") as handle:
        live = live_process(str(live_clip), "--out", "-", "--threads", "1", stdout=handle)
        summary = live.summary()
    with av.open(str(out)) as container:
        assert container.format.name == "mpegts"
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 192)
        assert audio.codec_context.name == "aac"
        frames = [float(f.pts * f.time_base) for f in container.decode(video)]
    with av.open(str(out)) as container:
        sound = [float(f.pts * f.time_base) for f in container.decode(audio=0)]
    assert summary["frames_in"] == 50
    assert len(frames) == summary["out_frames"] == 50 - summary["dropped"]
    assert summary["dropped"] <= 5
    # audio copied whole and in sync: same start and same length as the video (+- a frame)
    assert abs(sound[0] - frames[0]) < 0.05
    assert abs((sound[-1] - sound[0]) - (frames[-1] - frames[0])) < 0.1


def test_serve_refuses_non_loopback_addresses():
    assert parse_bind("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind("[::1]:8080") == ("::1", 8080)
    for bind in ("0.0.0.0:8080", "192.168.1.2:80", "example.com:80"):
        with pytest.raises(InputError):
            parse_bind(bind)


def test_stream_urls_go_through_the_ssrf_guard():
    from upscaler.live.source import open_source

    with pytest.raises(InputError, match="loopback"), open_source("http://127.0.0.1:9/x.ts"):
        pass
    with pytest.raises(InputError), open_source("file:///etc/passwd"):
        pass


def test_mpegts_on_stdin(live_ts, live_process):
    with live_ts.open("rb") as stdin:
        proc = live_process("-", "--duration", "1", "--threads", "1", stdin=stdin)
        summary = proc.summary()
    assert summary["frames_in"] == 25
    assert summary["frames_out"] + summary["dropped"] == 25


def test_stream_url_through_an_allowed_loopback_server(live_ts):
    """A progressive MPEG-TS over http, read through the guard (loopback allowed here only)."""
    import functools
    import ipaddress
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from upscaler.live.pacing import FakeClock
    from upscaler.live.source import Pacer, demux_live, open_source, video_info
    from upscaler.net.ssrf import UrlGuard

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(live_ts.parent))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{live_ts.name}"
        guard = UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),))
        with open_source(url, guard) as container:
            info = video_info(container)
            pacer = Pacer(FakeClock(), realtime=False)
            kinds = [kind for kind, *_ in demux_live(container, info, pacer)]
        assert (info.width, info.height) == (160, 96)
        assert kinds.count("video") == 50 and kinds.count("audio") > 0
    finally:
        httpd.shutdown()
        httpd.server_close()
