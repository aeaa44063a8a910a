"""Build a servable SageMaker `model.tar.gz` (no AWS calls: just files).

Layout, as the SageMaker PyTorch inference container expects it:

    model.pt                  the checkpoint (shipped weights or a given .pt)
    code/inference.py         model_fn / input_fn / predict_fn / output_fn
    code/requirements.txt     installed by the container at start-up
    code/upscaler/...         this core library, vendored (code/ is on the container's
                              sys.path), so the container needs no access to our package

The same `write_code_dir` is used by `sagemaker/train.py` to make the training job's
artifact servable as is; `stage_training_source` builds the training job's source directory.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import upscaler
from upscaler.errors import ModelError, UpscalerError
from upscaler.models.registry import build_from_checkpoint, shipped_weights_path

CODE_FILES = ("inference.py", "requirements.txt")
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


def resolve_checkpoint(model: str, scale: int) -> Path:
    """The checkpoint to serve: a .pt path, or the shipped weights of a registry name."""
    path = Path(model)
    if not (model.endswith((".pt", ".pth")) or path.is_file()):
        shipped = shipped_weights_path(model, scale)
        if shipped is None:
            raise ModelError(
                f"no checkpoint is shipped for {model} x{scale}; pass a trained .pt file"
            )
        path = shipped
    build_from_checkpoint(path, scale)  # fail here, not on the endpoint
    return path


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def package_model(model: str, scale: int, output: Path) -> Path:
    """Write `output` (model.tar.gz) for `model` (registry name or .pt) at `scale`."""
    checkpoint = resolve_checkpoint(model, scale)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copyfile(checkpoint, root / "model.pt")
        write_code_dir(root / "code")
        partial = output.with_name(output.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    tar.add(path, path.relative_to(root).as_posix(), filter=_reset)
        partial.replace(output)
    return output


def add_commands(sub: Any) -> None:
    """Register `upscaler sagemaker package` on the CLI's subparsers."""
    group = sub.add_parser("sagemaker", help="SageMaker artifacts")
    commands = group.add_subparsers(dest="sagemaker_command", required=True, metavar="COMMAND")
    p = commands.add_parser("package", help="build a servable model.tar.gz")
    p.add_argument("--model", default="fast", help="registry name (shipped weights) or a .pt")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("-o", "--output", default="model.tar.gz")
    p.set_defaults(func=cmd_package)


def cmd_package(args: Any) -> int:
    """`upscaler sagemaker package`: write the archive and say what is in it."""
    path = package_model(args.model, args.scale, Path(args.output))
    print(f"wrote {path} ({path.stat().st_size} bytes): model.pt + code/ for {args.model}")
    return 0
