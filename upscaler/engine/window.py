"""Windows of neighbouring frames for multi-frame models, the same wherever chunks are cut.

A window model (`SRModel.window` = 2r+1) upscales frame t from frames t-r..t+r. At the ends of
the *video* the first and last frames are repeated; at a chunk border the window reaches into
the adjacent chunks: `context_frames` decodes the last r frames of the preceding chunk files
and the first r of the following ones, so a chunk sees exactly the frames the whole file
would, and chunked output equals whole-file output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path

import av
import numpy as np
import torch

from upscaler.engine.colour import code_scale
from upscaler.errors import MediaError
from upscaler.media.filters import Picture
from upscaler.media.frames import DecodedFrame, decode_frames
from upscaler.media.limits import Limits
from upscaler.media.safe_open import open_media, short_reason

Window = tuple[DecodedFrame, list[np.ndarray]]  # (frame t, Y planes of t-r..t+r)


def sliding_windows(
    frames: Iterable[DecodedFrame],
    radius: int,
    before: Sequence[DecodedFrame] = (),
    after: Sequence[DecodedFrame] = (),
) -> Iterator[Window]:
    """Each frame of `frames` with the luma of its window, streaming (2r+1 frames held).

    `before` / `after` are context frames (not upscaled themselves); past them the window
    repeats the first / last frame there is, as at the ends of the video."""
    own = object()  # marks the frames to upscale
    buf: deque[tuple[DecodedFrame, object]] = deque(maxlen=2 * radius + 1)
    tagged = chain(
        ((f, None) for f in before), ((f, own) for f in frames), ((f, None) for f in after)
    )

    def ready() -> Iterator[Window]:
        if len(buf) == buf.maxlen and buf[radius][1] is own:
            yield buf[radius][0], [f.planes[0] for f, _ in buf]

    for item in tagged:
        if not buf:
            buf.extend([(item[0], None)] * radius)  # the start of the video, repeated
        buf.append(item)
        yield from ready()
    for _ in range(radius if buf else 0):
        buf.append((buf[-1][0], None))  # the end of the video, repeated
        yield from ready()


def stack_luma(windows: Sequence[Window], bits: int) -> torch.Tensor:
    """The luma of a batch of windows as the model input [N, 2r+1, H, W], normalised."""
    first = windows[0][1]
    out = torch.empty((len(windows), len(first), *first[0].shape), dtype=torch.float32)
    for i, (_, planes) in enumerate(windows):
        for j, plane in enumerate(planes):
            out[i, j].copy_(torch.from_numpy(plane))
    return out.div_(code_scale(bits))


def context_frames(
    paths: Sequence[Path],
    count: int,
    last: bool,
    pix_fmt: str,
    picture: Picture | None,
    limits: Limits,
) -> list[DecodedFrame]:
    """Up to `count` frames adjacent to a chunk, in display order: the last ones of the
    preceding chunk files (`last`, nearest file last in `paths`) or the first ones of the
    following files (nearest first). Fewer only at the ends of the video."""
    got: list[DecodedFrame] = []
    for path in reversed(paths) if last else paths:
        need = count - len(got)
        if need <= 0:
            break
        with open_media(path, limits) as container:
            decoded = decode_frames(container, pix_fmt, picture)
            try:
                if last:
                    got = list(deque(decoded, maxlen=need)) + got
                else:
                    got += islice(decoded, need)
            except av.error.FFmpegError as exc:
                raise MediaError(f"{path}: corrupt video ({short_reason(exc)})") from None
    return got
