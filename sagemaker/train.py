"""SageMaker training entry point: `python train.py --arch fast --scale 2 --steps 20000 ...`.

Runs the same `upscaler.train.loop.train` as `upscaler train`, with SageMaker's conventions:

- hyperparameters arrive as `--name value` (hyphens or underscores); any `TrainConfig`
  field is accepted except the paths below, which come from the environment;
- data: `SM_CHANNEL_TRAINING` holds `train_hr.npy` (or shards `train_hr_*.npy`, or the
  `training/shards/` datasets that `upscaler dataset build` / the dataset Lambda write) and an
  optional `dev_hr.npy`, uint8 [N, H, W, 3] patch arrays (`scripts/make_data.py`);
- checkpoints: `SM_CHECKPOINT_DIR` (default `/opt/ml/checkpoints`, which SageMaker syncs
  with the job's checkpoint S3 URI); a restarted (spot-interrupted) job resumes from there;
- metrics: printed as `step=100 loss=0.0123 lr=0.0019` and `step=500 dev_psnr=33.21`
  (see `METRIC_DEFINITIONS`);
- artifact: `SM_MODEL_DIR/model.pt` (best EMA checkpoint) plus `code/` (inference handler,
  requirements, vendored core), so the job's model.tar.gz is servable as is.

`upscaler` must be importable: the training notebook stages it beside this file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

METRIC_DEFINITIONS = [
    {"Name": "train:loss", "Regex": r"step=\d+ loss=([0-9.eE+-]+)"},
    {"Name": "train:lr", "Regex": r" lr=([0-9.eE+-]+)"},
    {"Name": "dev:psnr", "Regex": r"dev_psnr=([0-9.]+)"},
]
FROM_ENVIRONMENT = {"data", "dev", "out_dir", "resume", "export"}


def hyperparameters(argv: list[str]) -> list[str]:
    """`--batch-size 16 --lr=2e-3` -> `["batch_size=16", "lr=2e-3"]` (TrainConfig syntax)."""
    pairs, args = [], iter(argv)
    for arg in args:
        if not arg.startswith("--"):
            raise SystemExit(f"unexpected argument {arg!r}; use --name value")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            value = next(args, None)
            if value is None:
                raise SystemExit(f"{arg} needs a value")
        key = key.replace("-", "_")
        if key in FROM_ENVIRONMENT:
            raise SystemExit(f"--{key} is set from the SageMaker environment, not a hyperparameter")
        pairs.append(f"{key}={value}")
    return pairs


def training_data(channel: Path, scratch: Path) -> tuple[Path, Path | None]:
    """The train and (optional) dev arrays in a channel; shards are concatenated."""
    import numpy as np

    train = channel / "train_hr.npy"
    if not train.is_file() and any(channel.glob("**/manifest.json")):
        return channel, None  # `upscaler dataset build` shards (training/shards/), streamed
    if not train.is_file():
        shards = sorted(channel.glob("train_hr_*.npy"))
        if not shards:
            raise SystemExit(
                f"{channel}: no train_hr.npy, train_hr_*.npy shards or dataset manifest.json"
            )
        train = scratch / "train_hr.npy"
        np.save(train, np.concatenate([np.load(p) for p in shards]))
    dev = channel / "dev_hr.npy"
    return train, dev if dev.is_file() else None


def metric_line(record: dict) -> str:
    """One log.jsonl record as a `key=value` line for the metric regexes."""
    if "dev_psnr" in record:
        return f"step={record['step']} dev_psnr={record['dev_psnr']:.3f}"
    return f"step={record['step']} loss={record['loss']:.6f} lr={record['lr']:.3g}"


class MetricPrinter(threading.Thread):
    """Follows the loop's `log.jsonl` and prints each new record as a metric line."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.offset = path.stat().st_size if path.is_file() else 0  # skip resumed history
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.poll()
        self.poll()

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                self.offset += len(line)
                print(metric_line(json.loads(line)), flush=True)

    def stop(self) -> None:
        self.done.set()
        self.join()


def main(argv: list[str]) -> Path:
    """Train (resuming from the checkpoint dir) and write the servable model dir."""
    from upscaler.package import write_code_dir
    from upscaler.train.__main__ import parse
    from upscaler.train.loop import train

    channel = Path(os.environ.get("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training"))
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    checkpoints = Path(os.environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"))
    pairs = hyperparameters(argv)
    if not any(p.startswith("threads=") for p in pairs):
        pairs.append(f"threads={os.environ.get('SM_NUM_CPUS') or os.cpu_count() or 1}")
    with tempfile.TemporaryDirectory() as scratch:
        train_path, dev_path = training_data(channel, Path(scratch))
        cfg = parse(
            [
                *pairs,
                f"data={train_path}",
                f"dev={json.dumps(dev_path and str(dev_path))}",
                f"out_dir={checkpoints}",
                "resume=true",
            ]
        )
        printer = MetricPrinter(checkpoints / "log.jsonl")
        printer.start()
        try:
            best = train(cfg)
        finally:
            printer.stop()
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, model_dir / "model.pt")
    write_code_dir(model_dir / "code", source=Path(__file__).resolve().parent)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in ("log.jsonl", "curve.png", "config.json"):
        if (checkpoints / name).is_file():
            shutil.copyfile(checkpoints / name, output_dir / name)
    print(f"model artifact: {model_dir / 'model.pt'}", flush=True)
    return model_dir / "model.pt"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
    main(sys.argv[1:])
