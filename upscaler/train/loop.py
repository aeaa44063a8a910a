"""The training loop: `train(TrainConfig(...)) -> Path` of the best (EMA) checkpoint.

Used by `upscaler train` and by `sagemaker/train.py`. Writes into `out_dir`:
`last.pt` (full state for `resume`), `best.pt` (EMA weights with the best dev PSNR, a
normal model checkpoint with any re-parameterised branches folded; in the GAN stage the
latest EMA), `log.jsonl` and `curve.png`.
Resuming restores model, EMA, optimiser, history and RNG states, so a resumed run
continues exactly.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from upscaler.errors import ModelError
from upscaler.models.checkpoint import read_checkpoint, save_checkpoint
from upscaler.models.registry import get_spec
from upscaler.models.reparam import fold, folded_parameter_count
from upscaler.models.resample import imresize
from upscaler.train.data import (
    ClipDegrade,
    Degrade,
    PatchSampler,
    bicubic_lr,
    centre_frame,
    dev_clip_pairs,
    dev_pairs,
    load_patches,
)
from upscaler.train.ema import EMA
from upscaler.train.losses import PIXEL_LOSSES
from upscaler.train.plot import plot_curve

log = logging.getLogger(__name__)
NHWC = torch.channels_last


@dataclass
class TrainConfig:
    """Everything a training run needs; plain values so it serialises to JSON."""

    arch: str = "fast"
    scale: int = 2
    model_config: dict[str, Any] = field(default_factory=dict)
    data: str = "data/train_hr.npy"
    dev: str | None = "data/dev_hr.npy"
    out_dir: str = "runs/fast_x2"
    steps: int = 20000
    stop_at: int | None = None  # end this session early (time-boxing); resume later
    batch_size: int = 16
    crop: int = 96  # HR crop side
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup: int = 100
    loss: str = "charbonnier"
    ema_decay: float = 0.999
    val_every: int = 500
    log_every: int = 50
    seed: int = 0
    device: str = "auto"  # "cpu", "cuda", or "auto"
    amp: bool = True  # mixed precision on CUDA only
    threads: int | None = 2  # torch CPU threads
    # "real" (blur, noise, JPEG, H.264), "video" (clips) or "codec" (clips, bicubic + codec only)
    degradation: str = "bicubic"
    clean_fraction: float = 0.3  # "video", "codec": share of clips kept clean (bicubic only)
    init_from: str | None = None  # checkpoint to start from (matching tensors are copied)
    gan: bool = False  # GAN stage: + discriminator and VGG perceptual loss (from init_from)
    vgg_weights: str | None = None  # local VGG19 file; else $UPSCALER_VGG19 / hub cache
    pixel_weight: float = 0.01
    perceptual_weight: float = 1.0
    gan_weight: float = 0.005
    resume: bool = False
    export: str | None = None  # also copy the best checkpoint here (e.g. upscaler/weights)
    data_note: str = "Debian wallpaper photos (see DATA_LICENSES.md)"


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _degrade(cfg: TrainConfig) -> tuple[Degrade, ClipDegrade | None]:
    """(per-image degrade, used for the dev pairs; per-clip degrade for training or None)."""
    if cfg.degradation == "bicubic":
        return bicubic_lr, None
    if cfg.degradation == "real":
        from upscaler.train.degrade import real_lr

        return real_lr, None
    if cfg.degradation in ("video", "codec"):
        from upscaler.train.video import degrade_clip, video_lr

        kw = {"clean": cfg.clean_fraction, "camera": cfg.degradation == "video"}
        return partial(video_lr, **kw), partial(degrade_clip, **kw)
    raise ValueError(f"unknown degradation {cfg.degradation!r}: bicubic, real, video or codec")


def psnr_y(pred: torch.Tensor, target: torch.Tensor, shave: int) -> float:
    """PSNR (dB) of 8-bit-rounded `pred` against `target`, `shave` border pixels cropped."""
    pred = pred.clamp(0, 1).mul(255).round()
    target = target.mul(255).round()
    if shave:
        pred, target = (
            pred[..., shave:-shave, shave:-shave],
            target[..., shave:-shave, shave:-shave],
        )
    mse = (pred.double() - target.double()).pow(2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-10))


@torch.no_grad()
def validate(model: torch.nn.Module, pairs: list, scale: int, device: torch.device) -> float:
    """Mean PSNR over the dev pairs."""
    model.eval()
    scores = [psnr_y(model(lr.to(device)).float().cpu(), hr, scale) for lr, hr in pairs]
    return sum(scores) / len(scores)


def _init_from(model: torch.nn.Module, path: str) -> None:
    """Copy every tensor whose name and shape match (e.g. an x4 body from an x2 model); a
    window model started from a single-frame one widens it first (`from_single_frame`)."""
    payload = read_checkpoint(path)
    state = payload["state_dict"]
    widen = getattr(model, "from_single_frame", None)
    if widen is not None and get_spec(payload["arch"]).window == 1:
        state = widen(state)
    own = model.state_dict()
    copied = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    own.update(copied)
    model.load_state_dict(own)
    log.info("init from %s: %d/%d tensors", path, len(copied), len(own))


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) a model; return the path of the best EMA checkpoint."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # denormals make CPU convs crawl late in training
    device = _device(cfg)
    spec = get_spec(cfg.arch)
    if cfg.scale not in spec.scales:
        raise ModelError(f"{cfg.arch} supports x{spec.scales}, not x{cfg.scale}")
    torch.manual_seed(cfg.seed)
    # NHWC: oneDNN runs these small convs 1.25-1.3x faster (training, 2-core CPU, measured).
    model = spec.builder(cfg.scale, **cfg.model_config).to(device, memory_format=NHWC)
    params = folded_parameter_count(model)
    if cfg.init_from and not cfg.resume:
        _init_from(model, cfg.init_from)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    degrade, clip = _degrade(cfg)
    window = model.window
    sampler = PatchSampler(
        load_patches(cfg.data),
        cfg.scale,
        cfg.crop,
        model.channels,
        cfg.seed,
        degrade,
        clip,
        window,
    )
    pairs = []
    if cfg.dev and window > 1:
        assert clip is not None  # PatchSampler refused a window model without clips
        pairs = dev_clip_pairs(cfg.dev, cfg.scale, model.channels, clip, window)
    elif cfg.dev:
        pairs = dev_pairs(cfg.dev, cfg.scale, model.channels, degrade)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = PIXEL_LOSSES[cfg.loss]
    gan = None
    if cfg.gan:
        from upscaler.train.gan import GanStage

        in_ch = 1 if model.channels == "y" else 3
        gan = GanStage(
            in_ch,
            device,
            cfg.lr,
            cfg.vgg_weights,
            cfg.pixel_weight,
            cfg.perceptual_weight,
            cfg.gan_weight,
        )
    history: dict[str, Any] = {"loss": [], "psnr": [], "best": -1.0, "best_step": 0}
    if pairs:
        base = [
            psnr_y(
                imresize(centre_frame(lr, window, model.channels), scale=cfg.scale), hr, cfg.scale
            )
            for lr, hr in pairs
        ]
        history["baseline"] = sum(base) / len(base)
    step = 0
    last = out / "last.pt"
    if cfg.resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        scaler.load_state_dict(state["scaler"])
        if gan is not None:
            gan.load_state_dict(state["gan"])
        sampler.gen.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
        history, step = state["history"], state["step"]
        log.info("resumed %s at step %d", last, step)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    def meta(psnr: float) -> dict[str, Any]:
        return {
            "params": params,
            "data": cfg.data_note,
            "degradation": cfg.degradation,
            "stage": f"gan, perceptual {gan.note}" if gan else f"pixel ({cfg.loss})",
            "steps": step,
            "batch_size": cfg.batch_size,
            "crop": cfg.crop,
            "commit": _commit(),
            "metrics": {f"dev_psnr_{model.channels}": round(psnr, 3)},
            "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def save_last() -> None:
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.model.state_dict(),
                "opt": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "data_rng": sampler.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "step": step,
                **({"gan": gan.state_dict()} if gan else {}),
            },
            last.with_suffix(".tmp"),
        )
        last.with_suffix(".tmp").replace(last)

    best = out / "best.pt"

    def save_best(psnr: float) -> None:
        state, config = fold(ema.model, cfg.model_config)  # shipped as the plain, fast net
        save_checkpoint(best, cfg.arch, cfg.scale, config, state, meta(psnr))

    end = min(cfg.steps, cfg.stop_at or cfg.steps)
    logf = (out / "log.jsonl").open("a")
    t0, running = time.time(), 0.0
    model.train()
    while step < end:
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step)
        lr_img, hr_img = sampler.sample(cfg.batch_size)
        lr_img, hr_img = lr_img.to(device, memory_format=NHWC), hr_img.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            sr = model(lr_img).float()
            loss = gan.generator_loss(sr, hr_img) if gan else loss_fn(sr, hr_img)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if gan:
            gan.discriminator_step(sr, hr_img)
        ema.update(model, step)
        step += 1
        running += loss.item()
        if step % cfg.log_every == 0:
            history["loss"].append([step, running / cfg.log_every])
            rec = {
                "step": step,
                "loss": running / cfg.log_every,
                "lr": _lr_at(cfg, step),
                "sec": round(time.time() - t0, 1),
            }
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            running = 0.0
        if step % cfg.val_every == 0 or step == end:
            if pairs:
                psnr = validate(ema.model, pairs, cfg.scale, device)
                model.train()
                history["psnr"].append([step, psnr])
                logf.write(json.dumps({"step": step, "dev_psnr": psnr}) + "\n")
                logf.flush()
                log.info("step %d dev PSNR %.3f dB", step, psnr)
                if psnr > history["best"] or gan:  # GAN stage: PSNR is not the goal, keep latest
                    history["best"], history["best_step"] = psnr, step
                    save_best(psnr)
            else:  # no dev set: the latest EMA is the "best"
                save_best(float("nan"))
            save_last()
            plot_curve(history, out / "curve.png", f"{cfg.arch} x{cfg.scale}", model.channels)
    logf.close()
    if cfg.export and best.is_file():
        shutil.copyfile(best, cfg.export)
    return best
