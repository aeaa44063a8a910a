"""Open untrusted media safely: local regular files, allow-listed containers, no indirection.

FFmpeg demuxers such as HLS, DASH or concat open further URLs named inside the file
(`file:///etc/passwd`, `http://169.254.169.254/...`). We open the file ourselves and hand
PyAV a Python file object, refuse every nested open, and only let FFmpeg pick a demuxer
from a fixed allow-list of self-contained containers.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import av

from upscaler.errors import InputError, LimitExceededError
from upscaler.media.limits import Limits

#: Self-contained containers we accept (FFmpeg demuxer names): MP4/MOV/3GP, Matroska/WebM,
#: AVI, MPEG-TS, FLV, MPEG-PS (DVD VOB, VCD), Ogg, NUT, raw DV and ASF (WMV). None of these
#: demuxers opens a second file; HLS, DASH, concat, image sequences and the like are absent.
ALLOWED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "flv",
    "mpeg",
    "ogg",
    "nut",
    "dv",
    "asf",
)


def _refuse_nested_open(url: str, flags: int, options: dict) -> None:
    raise InputError(f"refusing to open {url!r} referenced from inside the input")


def check_local_file(path: str | Path, limits: Limits | None = None) -> Path:
    """Return `path` if it is a non-empty local regular file within the size limit."""
    limits = limits or Limits.from_env()
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{path}: file is empty")
    if st.st_size > limits.max_input_bytes:
        raise LimitExceededError(
            f"{path}: {st.st_size} bytes is over the limit of {limits.max_input_bytes}"
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return path


@contextmanager
def open_media(
    path: str | Path, limits: Limits | None = None
) -> Iterator[av.container.InputContainer]:
    """Open a local media file for demuxing with the safety rules above (a context manager)."""
    path = check_local_file(path, limits)
    handle: BinaryIO = path.open("rb")
    try:
        container = av.open(
            handle,
            mode="r",
            io_open=_refuse_nested_open,
            options={"format_whitelist": ",".join(ALLOWED_DEMUXERS)},
        )
    except InputError:
        handle.close()
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        handle.close()
        raise InputError(f"{path}: not a supported video file ({short_reason(exc)})") from None
    try:
        yield container
    finally:
        container.close()
        handle.close()


def short_reason(exc: Exception) -> str:
    """FFmpeg's one-line reason for an error, without the file name and errno noise."""
    text = str(exc)
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        text = exc.strerror
    return text.split(";")[0].strip() or type(exc).__name__
