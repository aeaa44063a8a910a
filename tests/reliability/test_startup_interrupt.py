"""Ctrl-C during start-up (while torch, numpy, PyAV... are imported) must interrupt the run:
exit 130, one line, no output.

It used to be lost now and then (docs/RELIABILITY.md, known gap 6): a KeyboardInterrupt that
lands inside importlib's module-lock weakref callback is dropped by CPython ("Exception
ignored in: <function _get_module_lock.<locals>.cb>") and the run completed with exit 0;
interrupted numpy/torch imports also ended in AttributeError/ImportError tracebacks or a
C++ abort. The CLI now defers SIGINT until the command's modules are imported."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from tests.clips import ClipSpec, make_clip
from upscaler import cli

MESSAGE = "upscaler: interrupted; no output was written"


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """As in a terminal, even when the tests themselves run with SIGINT ignored (`&`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def default_sigint() -> None:
    """For the CLI subprocesses: Python installs its handler only over SIG_DFL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("startup") / "clip.mp4", ClipSpec())


def sigint_inside_a_weakref_callback() -> None:
    """Deliver SIGINT where CPython cannot raise it: in a weakref callback (as importlib's
    module-lock callback after every import). With Python's default handler the
    KeyboardInterrupt is printed as "Exception ignored" and lost."""

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))
    del thing  # the callback runs here
    assert ref() is None


def test_ctrl_c_lost_in_a_weakref_callback_during_startup_still_exits_130(
    clip, tmp_path, monkeypatch, capsys
):
    real = cli.build_parser

    def build_parser():
        sigint_inside_a_weakref_callback()
        return real()

    monkeypatch.setattr(cli, "build_parser", build_parser)
    handler = signal.getsignal(signal.SIGINT)
    out = tmp_path / "out.mp4"
    code = cli.main(["upscale", str(clip), "-o", str(out), "--model", "bicubic"])
    err = capsys.readouterr().err
    assert code == 130, err
    assert err.strip().splitlines() == [MESSAGE]
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is handler  # start-up handler removed


def test_second_ctrl_c_during_startup_interrupts_at_once(clip, tmp_path, monkeypatch, capsys):
    """A hung import stays interruptible: the second SIGINT raises where it lands."""
    reached = []

    def build_parser():
        signal.raise_signal(signal.SIGINT)  # remembered
        signal.raise_signal(signal.SIGINT)  # raises here
        reached.append(True)

    monkeypatch.setattr(cli, "build_parser", build_parser)
    code = cli.main(["upscale", str(clip), "-o", str(tmp_path / "out.mp4")])
    assert code == 130 and not reached
    assert capsys.readouterr().err.strip().splitlines() == [MESSAGE]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored(monkeypatch, capsys):
    """`upscaler ... &` from a script or under nohup starts with SIGINT ignored: start-up
    must not make it interruptible (nor change the disposition)."""
    real = cli.build_parser

    def build_parser():
        signal.raise_signal(signal.SIGINT)
        return real()

    monkeypatch.setattr(cli, "build_parser", build_parser)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert cli.main(["models"]) == 0
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "bicubic" in capsys.readouterr().out


def _wait_for_torch(proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Until the process has mapped libtorch, i.e. it is inside main()'s start-up (torch is
    first imported by build_parser; before main the interpreter's own start-up, ~0.1 s,
    is CPython's)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text():
                return True
        except OSError:
            return False
        time.sleep(0.005)
    return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.slow  # ~15 s: five CLI processes importing torch
def test_sigint_at_random_points_of_startup_always_exits_130(clip, tmp_path):
    rng = random.Random(7)
    outcomes = []
    for attempt in range(5):
        out = tmp_path / f"out{attempt}.mp4"
        cmd = [sys.executable, "-m", "upscaler.cli", "upscale", str(clip), "-o", str(out),
               "--model", "bicubic"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, preexec_fn=default_sigint)  # fmt: skip
        in_startup = _wait_for_torch(proc)
        delay = rng.uniform(0.0, 0.5)
        time.sleep(delay)
        sent = in_startup and proc.poll() is None
        if sent:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        outcomes.append((round(delay, 3), sent, proc.returncode))
        if sent:
            assert proc.returncode == 130, f"{outcomes}: {err}"
            assert err.strip().splitlines() == [MESSAGE], outcomes
            assert not out.exists() and not list(tmp_path.glob(".*partial*")), outcomes
    assert sum(sent for _, sent, _ in outcomes) >= 3, outcomes
