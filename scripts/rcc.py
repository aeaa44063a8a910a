"""Read the files out of a Qt binary resource bundle (`.rcc`), as GCompris ships its images.

Format (Qt's rcc, versions 1-3): a "qres" header with the offsets of a node tree, a data
area and a name table; directory nodes list their children, file nodes point into the data
area, whose entries may be zlib (qCompress: 4-byte size prefix) or zstd compressed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


def read_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(member path such as "/gcompris/src/...", bytes) for every file in the bundle."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", buf[names + offset : names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16 text
        return buf[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", buf[at : at + 6])
        here = prefix + (name(name_offset) if index else "")
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", buf[at + 6 : at + 14])
            for child in range(first, first + count):
                yield from walk(child, here + "/")
            return
        (offset,) = struct.unpack(">I", buf[at + 10 : at + 14])
        (size,) = struct.unpack(">I", buf[data + offset : data + offset + 4])
        raw = buf[data + offset + 4 : data + offset + 4 + size]
        if flags & COMPRESSED:
            raw = zlib.decompress(raw[4:])
        elif flags & COMPRESSED_ZSTD:
            import zstandard

            raw = zstandard.ZstdDecompressor().decompress(raw)
        yield here, raw

    yield from walk(0, "")
