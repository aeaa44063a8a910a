"""The fuzz property, shared by tests/reliability/test_fuzz.py (Hypothesis, a few cases in
`make test`) and benchmarks/reliability.py (a seeded mutator, many more cases)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from upscaler.engine.runner import Upscaler
from upscaler.engine.video import upscale_video
from upscaler.errors import UpscalerError
from upscaler.media.probe import probe


def mutate(data: bytes, rng: random.Random, edits: int | None = None) -> bytes:
    """Overwrite, flip, insert, delete or truncate a few spots of `data`, like a bad disk,
    a broken upload or an attacker would."""
    out = bytearray(data)
    for _ in range(edits or rng.randint(1, 6)):
        if not out:
            break
        pos = rng.randrange(len(out))
        kind = rng.choice(("byte", "flip", "run", "insert", "delete", "truncate", "int32"))
        if kind == "byte":
            out[pos] = rng.randrange(256)
        elif kind == "flip":
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == "run":
            n = rng.randint(1, 64)
            out[pos : pos + n] = bytes([rng.choice((0, 0xFF, rng.randrange(256)))]) * n
        elif kind == "insert":
            out[pos:pos] = rng.randbytes(rng.randint(1, 32))
        elif kind == "delete":
            del out[pos : pos + rng.randint(1, 64)]
        elif kind == "truncate":
            del out[pos:]
        else:  # a size/count field made absurd
            out[pos : pos + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\0\0\0\0"))
    return bytes(out)


def check_property(data: bytes, workdir: Path, upscaler: Upscaler) -> str:
    """Upscale `data`; return "ok" or the UpscalerError class name. Anything else (another
    exception type, a wrong frame count, an output or temporary file left on failure) is
    raised as AssertionError or propagates."""
    src, out = workdir / "fuzz.mp4", workdir / "fuzz_out.mp4"
    src.write_bytes(data)
    out.unlink(missing_ok=True)
    try:
        upscale_video(src, out, upscaler, chunk_seconds=0.2)
    except UpscalerError as exc:
        assert not out.exists(), f"output left behind after {exc!r}"
        assert "\n" not in str(exc), f"multi-line message: {exc!r}"
        outcome = type(exc).__name__
    else:
        expected = probe(src).video.frame_count
        got = probe(out).video.frame_count
        assert got == expected, f"{got} frames out, probe counted {expected}"
        outcome = "ok"
    partial = [p for p in workdir.iterdir() if ".partial" in p.name]
    assert not partial, f"temporary files left: {partial}"
    return outcome


def tally(outcomes: list[str]) -> dict[str, int]:
    return dict(Counter(outcomes).most_common())
