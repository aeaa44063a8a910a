"""`--serve`: a loopback web page with the original and the enhanced view and live counters.

Stdlib only (`ThreadingHTTPServer`). Routes:

- ``/``                  the page (side by side, or one view over the other with a slider)
- ``/stats``             JSON counters (fps, latency, enhanced/degraded/dropped)
- ``/original.mjpg``, ``/enhanced.mjpg``   MJPEG streams (``multipart/x-mixed-replace``)
- ``/original.jpg``, ``/enhanced.jpg``     the latest frame as one JPEG

Both views show the *same* frame (the original is published when its enhanced version is
ready), so the comparison is exact; the latency counter says how late both are.
JPEGs are encoded lazily, once per frame, only while someone is watching. Every stream is
bounded in frames and seconds, and the number of concurrent streams is capped.
"""

from __future__ import annotations

import io
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from upscaler.errors import InputError
from upscaler.media.frames import planes_to_frame

BOUNDARY = "upscalerframe"
MAX_STREAMS = 8
STREAM_MAX_SECONDS = 3600.0
STREAM_MAX_FRAMES = 200_000
JPEG_QUALITY = 80


def parse_bind(text: str) -> tuple[str, int]:
    """'127.0.0.1:8080' -> (host, port); only loopback addresses may be bound."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = int(port_text)
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"--serve wants HOST:PORT with a loopback address, not {text!r}") from None
    if not addr.is_loopback:
        raise InputError(f"--serve only binds loopback addresses (127.0.0.1, ::1), not {host}")
    if not 0 <= port <= 65535:
        raise InputError(f"port out of range: {port}")
    return host, port


class FrameHub:
    """The latest (original, enhanced) frame pair, with waiting and cached JPEGs."""

    def __init__(self, pix_fmt: str) -> None:
        self.pix_fmt = pix_fmt
        self._cond = threading.Condition()
        self._seq = 0
        self._planes: dict[str, list] = {}
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self.finished = False

    def publish(self, original: list, enhanced: list) -> None:
        with self._cond:
            self._seq += 1
            self._planes = {"original": original, "enhanced": enhanced}
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    @property
    def seq(self) -> int:
        return self._seq

    def wait(self, after: int, timeout: float) -> int:
        """Wait up to `timeout` for a frame newer than `after`; the latest sequence number."""
        with self._cond:
            if self._seq <= after and not self.finished:
                self._cond.wait(timeout)
            return self._seq

    def jpeg(self, view: str) -> tuple[int, bytes | None]:
        """(sequence number, JPEG bytes) of the latest frame of `view`."""
        with self._cond:
            seq, planes = self._seq, self._planes.get(view)
            cached = self._jpeg.get(view)
        if planes is None:
            return seq, None
        if cached and cached[0] == seq:
            return cached
        buf = io.BytesIO()
        image = planes_to_frame(planes, self.pix_fmt).to_image()
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
        data = buf.getvalue()
        with self._cond:
            self._jpeg[view] = (seq, data)
        return seq, data


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>upscaler live</title>
<style>
body{margin:0;background:#111;color:#ddd;font:14px system-ui,sans-serif}
header{padding:8px 12px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
h1{font-size:16px;margin:0}
#stats span{margin-right:14px}#stats b{color:#fff}
.views{display:flex;gap:8px;padding:0 8px}
figure{margin:0;flex:1;min-width:0}
figure img{width:100%;display:block;background:#222}
figcaption{padding:4px 0;color:#aaa}
#slider{display:none;position:relative;margin:0 8px}
#slider img{width:100%;display:block}
#slider .top{position:absolute;left:0;top:0;clip-path:inset(0 50% 0 0)}
body.slide .views{display:none}body.slide #slider{display:block}
</style></head>
<body>
<header><h1>upscaler live</h1>
<label><input type="checkbox" id="mode"> slider</label>
<input type="range" id="pos" min="0" max="100" value="50" aria-label="slider position">
<div id="stats">connecting...</div></header>
<div class="views">
<figure><img id="orig" src="/original.mjpg" alt="original">
<figcaption>original (__SRC__, browser-scaled)</figcaption></figure>
<figure><img id="enh" src="/enhanced.mjpg" alt="enhanced">
<figcaption>enhanced (__MODEL__ x__SCALE__, __DST__)</figcaption></figure>
</div>
<div id="slider"><img id="s-enh" alt="enhanced"><img id="s-orig" class="top" alt="original">
</div>
<script>
const $ = (id) => document.getElementById(id);
$("mode").onchange = (e) => {
  document.body.classList.toggle("slide", e.target.checked);
  $("s-enh").src = e.target.checked ? "/enhanced.mjpg" : "";
  $("s-orig").src = e.target.checked ? "/original.mjpg" : "";
};
$("pos").oninput = (e) => {
  $("s-orig").style.clipPath = "inset(0 " + (100 - e.target.value) + "% 0 0)";
};
async function poll() {
  try {
    const s = await (await fetch("/stats", {cache: "no-store"})).json();
    const l = s.latency_ms;
    $("stats").innerHTML =
      `<span>fps in <b>${s.fps_in}</b></span><span>fps out <b>${s.fps_out}</b></span>` +
      `<span>latency <b>${l.mean}</b> ms (p95 ${l.p95}, max ${l.max})</span>` +
      `<span>enhanced <b>${s.enhanced}</b></span><span>degraded <b>${s.degraded}</b></span>` +
      `<span>dropped <b>${s.dropped}</b></span>` + (s.finished ? "<span>(finished)</span>" : "");
    if (s.finished) return;
  } catch (e) { $("stats").textContent = "stats unavailable"; }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""


class LiveServer:
    """The HTTP server on a loopback address, serving `hub` and `stats()` in threads."""

    def __init__(
        self,
        bind: str,
        hub: FrameHub,
        stats: Callable[[], dict[str, Any]],
        labels: dict[str, str],
    ) -> None:
        host, port = parse_bind(bind)
        self.hub = hub
        self.stats = stats
        page = PAGE
        for key, value in labels.items():
            page = page.replace(f"__{key.upper()}__", value)
        self.page = page.encode()
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.closing = threading.Event()
        server_class = ThreadingHTTPServer
        if ":" in host:

            class _V6(ThreadingHTTPServer):
                address_family = __import__("socket").AF_INET6

            server_class = _V6
        self.httpd = server_class((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="live-http")
        self.thread.daemon = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        self.hub.finish()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: LiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "upscaler-live"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", server.page)
            elif path == "/stats":
                body = json.dumps(server.stats()).encode()
                self._send(200, "application/json", body)
            elif path in ("/original.jpg", "/enhanced.jpg"):
                _, data = server.hub.jpeg(path[1:].split(".")[0])
                if data is None:
                    self._send(503, "text/plain", b"no frame yet\n")
                else:
                    self._send(200, "image/jpeg", data)
            elif path in ("/original.mjpg", "/enhanced.mjpg"):
                self._stream(path[1:].split(".")[0])
            else:
                self._send(404, "text/plain", b"not found\n")

        def _stream(self, view: str) -> None:
            if not server.streams.acquire(blocking=False):
                self._send(503, "text/plain", b"too many streams\n")
                return
            try:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                deadline = time.monotonic() + STREAM_MAX_SECONDS
                seq = 0
                for _ in range(STREAM_MAX_FRAMES):
                    if server.closing.is_set() or time.monotonic() > deadline:
                        break
                    latest = server.hub.wait(seq, timeout=1.0)
                    if latest == seq:
                        if server.hub.finished:
                            break
                        continue
                    seq, data = server.hub.jpeg(view)
                    if data is None:
                        continue
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                        + b"\r\n"
                    )
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                server.streams.release()

    return Handler
