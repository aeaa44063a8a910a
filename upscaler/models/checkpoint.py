"""Checkpoint files: weights plus the metadata needed to rebuild and trust them.

A checkpoint is a `torch.save`d dict, loaded with `weights_only=True` (no pickle code):
`{"format": 1, "arch": str, "scale": int, "config": dict, "state_dict": ..., "meta": dict}`.
`meta` records params, training data, steps, commit and measured metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from upscaler.errors import ModelError

FORMAT_VERSION = 1


def save_checkpoint(
    path: str | Path,
    arch: str,
    scale: int,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temp file, then rename)."""
    path = Path(path)
    payload = {
        "format": FORMAT_VERSION,
        "arch": arch,
        "scale": scale,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "meta": meta or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint file; raise ModelError with a clear reason."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ModelError(f"{path} is not an upscaler checkpoint (format {FORMAT_VERSION})")
    return validate_checkpoint(payload, path)


def validate_checkpoint(payload: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """`payload` if it has every key a checkpoint needs, else a ModelError."""
    for key in ("arch", "scale", "config", "state_dict"):
        if key not in payload:
            raise ModelError(f"{path} is missing {key!r}")
    return payload
