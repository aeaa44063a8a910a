"""Fine-tune a shipped model on your own footage and show the trade-off.

`finetune("fast", 2, "my-dataset/", steps=1000, out=Path("my-fast.pt"))`:

1. holds back `holdout` of the patches, whole frames at a time (patches of one frame are
   alike, so a random patch split would leak), capped at `max_holdout` patches;
2. measures the base model on the held-back patches, on a fixed sample of the training
   patches and on Set5 (when the dataset folder is there);
3. trains with the ordinary loop (`upscaler.train.loop.train`) from the shipped checkpoint with
   a low learning rate, a short warm-up and an EMA whose horizon fits the run, validating once
   at the end on the held-back patches (no checkpoint selection on them, so their number is
   an honest estimate);
4. measures again and writes a normal checkpoint (usable as `--model my-fast.pt`, packable for
   SageMaker) whose metadata records the base, the data and the before/after numbers.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from upscaler.dataset.shards import ShardedPatches, is_dataset
from upscaler.errors import InputError, ModelError
from upscaler.models.checkpoint import read_checkpoint, save_checkpoint
from upscaler.models.registry import build_from_checkpoint, shipped_weights_path

log = logging.getLogger(__name__)

#: ../shared/datasets/Set5 relative to the repository (the benchmark pairs), when present.
SET5 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "Set5"


def base_checkpoint(base: str, scale: int) -> Path:
    """The checkpoint file behind `base`: a path, or a registry name's shipped weights."""
    if base.endswith((".pt", ".pth")) or Path(base).is_file():
        path = Path(base)
        if not path.is_file():
            raise ModelError(f"checkpoint not found: {base}")
        return path
    path = shipped_weights_path(base, scale)
    if path is None:
        raise ModelError(f"no shipped {base} x{scale} checkpoint to fine-tune from")
    return path


def open_patches(data: str | Path) -> Any:
    """A dataset directory (shards) or a plain uint8 [N,P,P,3] `.npy`, memory-mapped."""
    path = Path(data)
    if path.is_dir():
        if not is_dataset(path):
            raise InputError(f"{path}: not a dataset (no manifest.json); run `dataset build`")
        return ShardedPatches(path)
    if not path.is_file():
        raise InputError(f"{path}: no such dataset")
    arr = np.load(path, mmap_mode="r")
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"{path}: expected uint8 [N, H, W, 3], got {arr.dtype} {arr.shape}")
    return arr


def split_holdout(
    patches: Any, fraction: float, seed: int, max_holdout: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-back indices): whole frames held back when the manifest has them."""
    n = len(patches)
    if n < 2:
        raise InputError(f"the dataset has {n} patch(es); fine-tuning needs at least 2")
    if not 0 < fraction < 1:
        raise InputError(f"holdout must be between 0 and 1, not {fraction}")
    want = min(max(1, round(n * fraction)), max_holdout, n - 1)
    rng = np.random.default_rng(seed)
    frames = getattr(patches, "frames", None) or []
    held: list[int] = []
    if len(frames) >= 2:
        for k in rng.permutation(len(frames)):
            if len(held) >= want:
                break
            frame = frames[int(k)]
            held.extend(range(frame["first"], frame["first"] + frame["count"]))
        held = held[:max_holdout]
        if len(held) >= n:  # one huge frame: fall back to a patch split
            held = []
    if not held:
        held = rng.permutation(n)[:want].tolist()
    mask = np.zeros(n, bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@torch.no_grad()
def measure(model: torch.nn.Module, pairs: list, scale: int) -> dict[str, float]:
    """Mean PSNR-Y (the training loop's protocol) and mean L1 over (lr, hr) pairs."""
    from upscaler.train.loop import psnr_y

    model.eval()
    psnrs, l1s = [], []
    for lr, hr in pairs:
        sr = model(lr).float()
        psnrs.append(psnr_y(sr, hr, scale))
        l1s.append(float((sr.clamp(0, 1) - hr).abs().mean()))
    return {"psnr_y": sum(psnrs) / len(psnrs), "l1": sum(l1s) / len(l1s)}


def _set5(model: torch.nn.Module, scale: int, set5: Path | None) -> float | None:
    if set5 is None or not (set5 / f"x{scale}").is_dir():
        return None
    from upscaler.evaluate.quality import evaluate

    return round(evaluate(model, scale, set5)["psnr_y"], 3)


def finetune(
    base: str,
    scale: int,
    data_dir: str | Path,
    steps: int,
    out: Path,
    lr: float = 2e-4,
    holdout: float = 0.1,
    *,
    batch_size: int = 16,
    crop: int | None = None,
    seed: int = 0,
    set5: Path | None = SET5,
    device: str = "auto",
    threads: int | None = 2,
    degradation: str = "bicubic",
    max_holdout: int = 256,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune `base` (name or .pt) at `scale` on `data_dir`; write `out`; return the report."""
    from upscaler.train.data import bicubic_lr, dev_pairs
    from upscaler.train.loop import TrainConfig, train

    started = time.perf_counter()
    out = Path(out)
    if steps < 1:
        raise InputError("steps must be >= 1")
    ckpt = base_checkpoint(base, scale)
    payload = read_checkpoint(ckpt)
    if payload["scale"] != scale:
        raise ModelError(f"{ckpt} is a x{payload['scale']} checkpoint, not x{scale}")
    arch, config = payload["arch"], payload["config"]

    patches = open_patches(data_dir)
    size = patches.shape[1]
    crop = crop or min(96, size - size % (2 * scale))
    if crop % scale or crop > size or crop < 4 * scale:
        raise InputError(f"crop {crop} must divide by {scale} and fit the {size}px patches")
    train_idx, held_idx = split_holdout(patches, holdout, seed, max_holdout)

    work = Path(work_dir) if work_dir else out.with_name(out.stem + ".finetune")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    train_file = _save_subset(patches, train_idx, work / "train.npy")
    held_file = _save_subset(patches, held_idx, work / "holdout.npy")
    rng = np.random.default_rng(seed)
    probe_idx = rng.permutation(len(train_idx))[: min(64, len(train_idx))]
    probe_file = _save_subset(np.load(train_file, mmap_mode="r"), probe_idx, work / "probe.npy")

    if degradation == "real":
        from upscaler.train.degrade import real_lr as degrade
    else:
        degrade = bicubic_lr
    before_model = build_from_checkpoint(ckpt, scale).eval()
    channels = before_model.channels
    held_pairs = dev_pairs(held_file, scale, channels, degrade)
    probe_pairs = dev_pairs(probe_file, scale, channels, degrade)
    from upscaler.models.resample import imresize
    from upscaler.train.loop import psnr_y

    bicubic = sum(psnr_y(imresize(lr, scale=scale), hr, scale) for lr, hr in held_pairs) / len(
        held_pairs
    )
    before = {
        "holdout": measure(before_model, held_pairs, scale),
        "train": measure(before_model, probe_pairs, scale),
        "set5": _set5(before_model, scale, set5),
    }

    cfg = TrainConfig(
        arch=arch,
        scale=scale,
        model_config=config,
        data=str(train_file),
        dev=str(held_file),
        out_dir=str(work / "run"),
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        min_lr=lr / 10,
        warmup=min(100, max(1, steps // 10)),
        # An EMA horizon of ~1/10 of the run: long enough to smooth, short enough to move.
        ema_decay=min(0.999, max(0.9, 1 - 10 / steps)),
        val_every=steps,  # one validation, at the end: no selection on the held-back patches
        log_every=max(1, min(50, steps // 10)),
        seed=seed,
        device=device,
        threads=threads,
        degradation=degradation,
        init_from=str(ckpt),
        data_note=f"fine-tuned from {base} x{scale} on {data_dir}",
    )
    best = train(cfg)
    after_model = build_from_checkpoint(best, scale).eval()
    after = {
        "holdout": measure(after_model, held_pairs, scale),
        "train": measure(after_model, probe_pairs, scale),
        "set5": _set5(after_model, scale, set5),
    }
    licence = ""
    if isinstance(patches, ShardedPatches):
        licence = "; ".join(sorted({m.get("licence", "") for m in patches.manifests} - {""}))
    report = {
        "output": str(out),
        "base": base,
        "base_checkpoint": str(ckpt),
        "arch": arch,
        "scale": scale,
        "steps": steps,
        "lr": lr,
        "data": str(data_dir),
        "train_patches": len(train_idx),
        "holdout_patches": len(held_idx),
        "holdout_bicubic_psnr": round(bicubic, 3),
        "holdout_psnr_before": round(before["holdout"]["psnr_y"], 3),
        "holdout_psnr_after": round(after["holdout"]["psnr_y"], 3),
        "train_psnr_before": round(before["train"]["psnr_y"], 3),
        "train_psnr_after": round(after["train"]["psnr_y"], 3),
        "train_l1_before": round(before["train"]["l1"], 6),
        "train_l1_after": round(after["train"]["l1"], 6),
        "set5_psnr_before": before["set5"],
        "set5_psnr_after": after["set5"],
        "licence": licence,
    }
    meta = dict(read_checkpoint(best).get("meta", {}))
    meta["finetune"] = {k: v for k, v in report.items() if k not in ("output",)}
    meta["metrics"] = {
        **meta.get("metrics", {}),
        "holdout_psnr_y": report["holdout_psnr_after"],
        **({"set5_psnr_y": report["set5_psnr_after"]} if report["set5_psnr_after"] else {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, arch, scale, config, after_model.state_dict(), meta)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["work_dir"] = str(work)
    if math.isfinite(report["holdout_psnr_after"]):
        log.info(
            "held-back PSNR %.2f -> %.2f dB",
            report["holdout_psnr_before"],
            report["holdout_psnr_after"],
        )
    return report


def _save_subset(patches: Any, indices: np.ndarray, path: Path) -> Path:
    """Patches `indices` as a plain .npy, copied one patch at a time (memory flat)."""
    if isinstance(patches, ShardedPatches):
        return patches.save_subset(indices, path)
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.uint8, shape=(len(indices), *patches.shape[1:])
    )
    for j, i in enumerate(indices):
        out[j] = patches[int(i)]
    out.flush()
    del out
    return path
