"""Build a servable SageMaker `model.tar.gz` (no AWS calls: just files).

Layout, as the SageMaker PyTorch inference container expects it:

    manifest.json             {"<model>": [scales...]}: what this endpoint serves, nothing else
    models/<model>_x<s>.pt    one checkpoint per served (model, scale) that has weights
    code/inference.py         model_fn / input_fn / predict_fn / output_fn
    code/requirements.txt     installed by the container at start-up
    code/upscaler/...         this core library, vendored without any weights (code/ is on the
                              container's sys.path), so only the archive's models are served

The default archive (`package_default`) serves every shipped checkpoint (the simplified ESRGAN
in both stages, fast, fast-real, compact) and the weightless baselines; the CDK stack builds it
at synth time and publishes it as an asset. The archive is byte-for-byte reproducible (fixed
order, owners, modes and times), so an unchanged repository gives an unchanged asset hash.

The same `write_code_dir` is used by `sagemaker/train.py` to make the training job's
artifact servable as is (`model.pt` + `code/`); `stage_training_source` builds the training
job's source directory.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import upscaler
from upscaler.errors import ModelError, UpscalerError
from upscaler.models.registry import (
    available_models,
    build_from_checkpoint,
    get_spec,
    shipped_weights_path,
)

CODE_FILES = ("inference.py", "requirements.txt")
MANIFEST = "manifest.json"
WEIGHTLESS = ("bicubic", "lanczos")
TRAIN_REQUIREMENTS = "requirements-train.txt"
# Never vendored: caches, and checkpoints (the served one is model.pt at the top).
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pt", "*.pth", "*.tmp")


def sagemaker_dir() -> Path:
    """The repository's `sagemaker/` source directory (beside the `upscaler` package)."""
    path = Path(upscaler.__file__).resolve().parents[1] / "sagemaker"
    if not all((path / name).is_file() for name in CODE_FILES):
        raise UpscalerError(
            f"SageMaker sources not found at {path} (need {', '.join(CODE_FILES)}); "
            "packaging needs a source checkout of the repository, not a wheel install"
        )
    return path


def copy_core(dest: Path) -> Path:
    """Copy the `upscaler` package (without caches and checkpoints) to `dest/upscaler`."""
    target = Path(dest) / "upscaler"
    shutil.rmtree(target, ignore_errors=True)  # no stale modules from an earlier copy
    shutil.copytree(Path(upscaler.__file__).resolve().parent, target, ignore=_IGNORE)
    return target


def write_code_dir(code: Path, source: Path | None = None) -> Path:
    """Fill `code/` with the inference handler, its requirements and the vendored core."""
    source = source or sagemaker_dir()
    code = Path(code)
    code.mkdir(parents=True, exist_ok=True)
    for name in CODE_FILES:
        shutil.copyfile(source / name, code / name)
    copy_core(code)
    return code


def stage_training_source(dest: Path) -> Path:
    """A training job's source_dir: `train.py`, the `code/` files and the vendored core.

    `requirements-train.txt` is the runtime requirements minus torch (the image's own).
    """
    source = sagemaker_dir()
    dest = write_code_dir(dest, source)
    shutil.copyfile(source / "train.py", dest / "train.py")
    runtime = (source.parent / "requirements.txt").read_text().splitlines()
    keep = [line for line in runtime if line.strip() and not line.startswith(("#", "torch"))]
    (dest / TRAIN_REQUIREMENTS).write_text("\n".join(keep) + "\n")
    return dest


@dataclass(frozen=True)
class Served:
    """One (model, scale) an archive serves; `checkpoint` None for a weightless baseline."""

    name: str
    scale: int
    checkpoint: Path | None

    @property
    def member(self) -> str | None:
        """The checkpoint's path inside the archive."""
        return weights_member(self.name, self.scale) if self.checkpoint else None


def weights_member(name: str, scale: int) -> str:
    return f"models/{name}_x{scale}.pt"


def manifest_of(served: list[Served]) -> dict[str, list[int]]:
    """model -> sorted scales: the manifest inside the archive and in the stack's outputs."""
    out: dict[str, list[int]] = {}
    for entry in served:
        out.setdefault(entry.name, []).append(entry.scale)
    return {name: sorted(set(scales)) for name, scales in sorted(out.items())}


def shipped() -> list[Served]:
    """Every shipped checkpoint, plus the weightless baselines at their scales."""
    served = []
    for name, spec in sorted(available_models().items()):
        for scale in spec.scales:
            weights = shipped_weights_path(name, scale)
            if weights is not None or name in WEIGHTLESS:
                served.append(Served(name, scale, weights))
    return served


def resolve(model: str, scale: int) -> Served:
    """A registry name (shipped weights or a baseline) or a .pt file, checked loadable now
    (not on the endpoint). A file is served under its stem, e.g. `my-finetune`."""
    path = Path(model)
    if model.endswith((".pt", ".pth")) or path.is_file():
        build_from_checkpoint(path, scale)
        name = re.sub(r"[^a-z0-9_.-]+", "-", path.stem.lower()).strip("-.") or "model"
        return Served(name, scale, path)
    if model in WEIGHTLESS:
        if scale not in get_spec(model).scales:
            raise ModelError(f"{model} has no x{scale}")
        return Served(model, scale, None)
    shipped_path = shipped_weights_path(model, scale)
    if shipped_path is None:
        raise ModelError(f"no checkpoint is shipped for {model} x{scale}; pass a trained .pt file")
    build_from_checkpoint(shipped_path, scale)
    return Served(model, scale, shipped_path)


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def package(served: list[Served], output: Path) -> Path:
    """Write `output` (model.tar.gz) serving `served`; reproducible to the byte."""
    if not served:
        raise ModelError("nothing to package: name at least one model")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for entry in served:
            if entry.checkpoint is not None:
                (root / "models").mkdir(exist_ok=True)
                shutil.copyfile(entry.checkpoint, root / str(entry.member))
        (root / MANIFEST).write_text(json.dumps(manifest_of(served), indent=1) + "\n")
        write_code_dir(root / "code")
        partial = output.with_name(output.name + ".partial")
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    tar.add(path, path.relative_to(root).as_posix(), filter=_reset)
        partial.replace(output)
    return output


def package_model(model: str, scale: int, output: Path) -> Path:
    """An archive serving one model: a registry name, a baseline or a .pt file."""
    return package([resolve(model, scale)], output)


def package_default(output: Path) -> Path:
    """The archive `cdk deploy` publishes: every shipped model (see `shipped`)."""
    return package(shipped(), output)


def add_commands(sub: Any) -> None:
    """Register `upscaler sagemaker package` on the CLI's subparsers."""
    group = sub.add_parser("sagemaker", help="SageMaker artifacts")
    commands = group.add_subparsers(dest="sagemaker_command", required=True, metavar="COMMAND")
    p = commands.add_parser("package", help="build a servable model.tar.gz")
    p.add_argument(
        "--model",
        default=None,
        help="registry name or a .pt (default: every shipped model, as `cdk deploy` does)",
    )
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("-o", "--output", default="model.tar.gz")
    p.set_defaults(func=cmd_package)


def cmd_package(args: Any) -> int:
    """`upscaler sagemaker package`: write the archive and say what it serves."""
    served = shipped() if args.model is None else [resolve(args.model, args.scale)]
    path = package(served, Path(args.output))
    listing = ", ".join(f"{n} x{'/'.join(map(str, s))}" for n, s in manifest_of(served).items())
    print(f"wrote {path} ({path.stat().st_size} bytes) serving {listing}")
    return 0
