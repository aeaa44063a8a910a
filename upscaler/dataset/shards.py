"""A compact, versioned on-disk format for HR training patches, read by memory mapping.

A dataset directory holds uint8 shards `shard-00000.npy` ([n, P, P, 3] each, plain `.npy` so
any numpy reads them) and `manifest.json`, written last (temp file, then rename): a directory
without a manifest is not a dataset, so a crashed build never looks like a finished one.

    {"format": "upscaler-patches", "version": 1, "patch": 96, "count": 1234,
     "shards": [{"file": "shard-00000.npy", "count": 1024, "sha256": "..."}, ...],
     "sources": [{"name": "clip.mp4", "kind": "video", "width": ..., "height": ...,
                  "frames_decoded": ..., "scenes": ..., "frames_used": ..., "patches": ...}],
     "frames": [{"source": 0, "pts": 1001, "time_s": 0.033, "scene": 0, "sharpness": 812.5,
                 "first": 0, "count": 12}, ...],
     "licence": "...", "seed": 0, "settings": {...}, "created": "..."}

`frames[i]` says where patches `first .. first+count-1` were cut from (source, pts), so a
patch can be traced to its frame and sources can be dropped for licence reasons.

`ShardedPatches(path)` looks like a read-only uint8 array [N, P, P, 3] to the training code
(`len`, `shape`, `dtype`, `ndim`, `patches[i]`, `patches[i, y:y+c, x:x+c]`, iteration) but maps
the shards with `np.load(mmap_mode="r")`: memory stays flat however many videos went in. A path
whose sub-directories are datasets (e.g. `training/shards/` synced from S3, one directory per
video) is read as their concatenation.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "upscaler-patches"
VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 1024  # patches per shard: 28 MB at 96x96


class ShardFormatError(ValueError):
    """The directory is not a dataset this version can read."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npy"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class ShardWriter:
    """Collects patches and writes a full shard as soon as one is complete (bounded memory).

    `close(manifest_fields)` writes the last, partial shard and then the manifest.
    """

    out_dir: Path
    patch: int
    shard_size: int = DEFAULT_SHARD_SIZE
    prefix: str = ""  # shard files go to out_dir/prefix (the Lambda's per-build directory)
    shards: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    _pending: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        (self.out_dir / self.prefix).mkdir(parents=True, exist_ok=True)

    def add(self, patch: np.ndarray) -> None:
        if patch.shape != (self.patch, self.patch, 3) or patch.dtype != np.uint8:
            raise ValueError(f"expected uint8 [{self.patch}, {self.patch}, 3], got {patch.shape}")
        self._pending.append(patch)
        self.count += 1
        if len(self._pending) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        rel = str(Path(self.prefix) / shard_name(len(self.shards)))
        path = self.out_dir / rel
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.save(fh, np.stack(self._pending))
        os.replace(tmp, path)
        self.shards.append({"file": rel, "count": len(self._pending), "sha256": _sha256(path)})
        self._pending = []

    def close(self, **fields: Any) -> dict[str, Any]:
        """Write the last shard, then `manifest.json` (last, atomically); return the manifest."""
        self._flush()
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "patch": self.patch,
            "count": self.count,
            "shards": self.shards,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **fields,
        }
        _atomic_write_bytes(self.out_dir / MANIFEST, json.dumps(manifest, indent=1).encode())
        return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a dataset directory, checked for format and version."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardFormatError(f"{directory}: no {MANIFEST} (not a finished dataset)") from None
    except (OSError, ValueError) as exc:
        raise ShardFormatError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ShardFormatError(f"{path}: not an {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ShardFormatError(
            f"{path}: format version {manifest.get('version')}, this reader knows {VERSION}"
        )
    return manifest


def is_dataset(path: str | Path) -> bool:
    """A dataset directory, or a directory of them."""
    path = Path(path)
    return path.is_dir() and (
        (path / MANIFEST).is_file() or any(p.is_file() for p in path.glob(f"*/{MANIFEST}"))
    )


class ShardedPatches:
    """A read-only uint8 [N, P, P, 3] view over one or more dataset directories (mmap)."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path: str | Path, verify: bool = False) -> None:
        root = Path(path)
        if (root / MANIFEST).is_file():
            dirs = [root]
        else:
            dirs = sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))
            if not dirs:
                raise ShardFormatError(f"{root}: no {MANIFEST} here or in its sub-directories")
        self.root = root
        self.manifests = [read_manifest(d) for d in dirs]
        sizes = {m["patch"] for m in self.manifests}
        if len(sizes) != 1:
            raise ShardFormatError(f"{root}: datasets with different patch sizes {sorted(sizes)}")
        self.patch = sizes.pop()
        self._files: list[Path] = []
        counts = []
        for directory, manifest in zip(dirs, self.manifests, strict=True):
            for shard in manifest["shards"]:
                file = directory / shard["file"]
                if not file.is_file():
                    raise ShardFormatError(f"{file}: listed in the manifest but missing")
                if verify and _sha256(file) != shard["sha256"]:
                    raise ShardFormatError(f"{file}: checksum does not match the manifest")
                self._files.append(file)
                counts.append(int(shard["count"]))
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._maps: dict[int, np.ndarray] = {}

    # --- the array-like surface the training code uses -----------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.patch, self.patch, 3)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _shard(self, k: int) -> np.ndarray:
        arr = self._maps.get(k)
        if arr is None:
            arr = np.load(self._files[k], mmap_mode="r")
            expected = (int(self._starts[k + 1] - self._starts[k]), self.patch, self.patch, 3)
            if arr.dtype != np.uint8 or arr.shape != expected:
                raise ShardFormatError(f"{self._files[k]}: {arr.dtype} {arr.shape}, not {expected}")
            self._maps[k] = arr
        return arr

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"patch index {index} out of range for {n} patches")
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        return k, index - int(self._starts[k])

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            k, row = self._locate(int(key))
            return self._shard(k)[(row, *rest)]
        if isinstance(key, slice):
            key = range(*key.indices(len(self)))
        rows = np.asarray(key, dtype=np.int64).reshape(-1)
        out = [self[(int(i), *rest)] for i in rows]
        if out:
            return np.stack(out)
        return np.empty((0, *self.shape[1:]), np.uint8)[(slice(None), *rest)]

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in range(len(self._files)):
            yield from self._shard(k)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        return f"ShardedPatches({str(self.root)!r}, shape={self.shape})"

    # --- provenance ------------------------------------------------------------------------
    @property
    def frames(self) -> list[dict[str, Any]]:
        """Every frame record (with `first` made global across concatenated datasets)."""
        out, offset = [], 0
        for manifest in self.manifests:
            out.extend({**f, "first": f["first"] + offset} for f in manifest.get("frames", []))
            offset += manifest["count"]
        return out

    def save_subset(self, indices: np.ndarray, path: str | Path) -> Path:
        """Write patches `indices` to a plain `.npy` (streamed: memory flat in the subset size)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npy")
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(indices), *self.shape[1:])
        )
        for j, i in enumerate(indices):
            out[j] = self[int(i)]
        out.flush()
        del out
        os.replace(tmp, path)
        return path
