"""Helpers for the live-mode tests: a short sample clip and a `live` subprocess."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from upscaler.media.sample import make_sample_clip

#: `upscaler live` (through its own module, so it runs whether or not the main CLI has it).
LIVE = [sys.executable, "-m", "upscaler.live.cli", "live"]


@pytest.fixture(scope="session")
def live_clip(tmp_path_factory) -> Path:
    """2 s of the sample at 160x96, 25 fps, H.264 + AAC."""
    return make_sample_clip(
        tmp_path_factory.mktemp("live") / "clip.mp4", width=160, height=96, seconds=2, fps=25
    )


class LiveProcess:
    """`upscaler live ...` in a subprocess, its stderr read by a thread."""

    def __init__(self, *args: str, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [*LIVE, *args], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.stderr.append(line)
            self.lines.put(line)

    def wait_for(self, prefix: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line; stderr:\n" + "\n".join(self.stderr[-20:]))

    def summary(self, timeout: float = 60.0) -> dict:
        self.proc.wait(timeout)
        self._reader.join(5)
        lines = [line for line in self.stderr if line.startswith("live: {")]
        assert self.proc.returncode == 0, "\n".join(self.stderr[-20:])
        assert lines, "\n".join(self.stderr[-20:])
        return json.loads(lines[-1][len("live: ") :])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def live_process():
    started: list[LiveProcess] = []

    def start(*args: str, **kwargs) -> LiveProcess:
        process = LiveProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


@pytest.fixture(scope="session")
def live_ts(live_clip) -> Path:
    """The same clip remuxed to MPEG-TS (what stdin and stream URLs carry)."""
    import av

    path = live_clip.with_suffix(".ts")
    with av.open(str(live_clip)) as src, av.open(str(path), "w", format="mpegts") as dst:
        mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    return path
