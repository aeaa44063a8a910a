"""Stream an HTTP response body to a file within a byte limit (header and bytes counted)."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path

from upscaler.errors import LimitExceededError


def save_limited(
    response: http.client.HTTPResponse,
    url: str,
    path: Path,
    limit: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write `response`'s body to `path`; refuse more than `limit` bytes (closes the response).

    `progress` is called with the byte count so far after each block.
    """
    with response:
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise LimitExceededError(f"{url}: {length} bytes is over the limit of {limit}")
        size = 0
        with path.open("wb") as out:
            while block := response.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise LimitExceededError(f"{url}: more than the limit of {limit} bytes")
                out.write(block)
                if progress:
                    progress(size)
