"""The `upscaler` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from upscaler import __version__
from upscaler.errors import InputError, OutputError, UpscalerError

log = logging.getLogger("upscaler")


# What each command imports before any work: loaded while Ctrl-C is deferred (see
# _StartupInterrupt), so an interrupt never lands inside a third-party import.
_UPSCALE_MODULES = (
    "upscaler.engine.image",
    "upscaler.engine.runner",
    "upscaler.engine.video",
    "upscaler.media.merge",
    "upscaler.media.probe",
    "upscaler.media.writer",
    "upscaler.models.auto",
)


class _StartupInterrupt:
    """Ctrl-C while the command's modules are imported: remembered, not raised.

    A KeyboardInterrupt raised inside an import is not reliably an interrupt: CPython drops it
    when it lands in importlib's module-lock weakref callback ("Exception ignored in
    _get_module_lock.<locals>.cb", and the run went on to exit 0), numpy interrupted
    mid-import fails later with AttributeError or "cannot load module more than once", and
    torch's C++ start-up can abort the process. So during start-up the SIGINT handler only
    records the signal and main() exits 130 once the imports are done, before any work. A
    second Ctrl-C raises at once, so a hung import stays interruptible."""

    def __init__(self) -> None:
        self.interrupted = False
        self._installed = False

    def _handler(self, signum: int, frame: object) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def __enter__(self) -> _StartupInterrupt:
        # only over Python's own handler: SIGINT ignored (`upscaler ... &` in a script,
        # nohup) stays ignored, and an embedding program's handler is left alone
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _progress_bar(total: int, enabled: bool, unit: str = "frame"):
    """A tqdm bar (frames, fps, ETA) on a terminal; a no-op otherwise."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, dynamic_ncols=True, leave=False)


def _print_result(args: argparse.Namespace, result: dict) -> None:
    if args.json:
        print(json.dumps(result))
    else:
        fields = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("input", "output"))
        print(f"wrote {result['output']} ({fields})")


def cmd_upscale(args: argparse.Namespace) -> int:
    from upscaler.cli_picture import picture_fields
    from upscaler.engine.image import IMAGE_SUFFIXES
    from upscaler.engine.runner import Upscaler
    from upscaler.engine.video import upscale_video
    from upscaler.job import JobSpec
    from upscaler.media.merge import output_format
    from upscaler.media.probe import probe_with_packets
    from upscaler.models.registry import DEFAULT_MODEL

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise InputError(f"{src}: no such file or directory")
    if src.resolve() == dst.resolve():
        raise OutputError("the output must not overwrite the input")
    # no --model: one is chosen from the source below; the spec checks everything else now
    fields = {"model": args.model or DEFAULT_MODEL, "scale": args.scale}
    fields |= {"codec": args.codec, "crf": args.crf, **picture_fields(args)}
    spec = JobSpec.parse({**fields, "preset": args.preset}, checkpoint_paths=True)
    show = sys.stderr.isatty() and not args.json
    started = time.perf_counter()
    base = {"input": str(src), "output": str(dst), "model": args.model, "scale": args.scale}
    if src.is_dir() or src.suffix.lower() in IMAGE_SUFFIXES:
        jobs = _plan_images(src, dst, args.scale)  # every limit, before the model loads
        _default_model(args, base, None)
        upscaler = Upscaler(
            args.model, args.scale, args.device, tile=args.tile, runtime=args.runtime
        )
        frames = _upscale_images(jobs, dst if src.is_dir() else None, upscaler, show)
        seconds = time.perf_counter() - started
    else:
        output_format(dst)
        probed = probe_with_packets(src)  # bad input fails before the model loads
        _default_model(args, base, probed[0])
        video = probed[0].video
        picture = spec.picture(video)
        if args.deinterlace == "auto" and picture.deinterlace == "ivtc":
            log.warning(
                "telecined film (3:2 pulldown, %.0f%% of sample frames combed): restoring the "
                "film frames with fieldmatch and decimate; --deinterlace off keeps the fields",
                100 * video.combed,
            )
        elif args.deinterlace == "auto" and picture.deinterlace != "off":
            log.warning(
                "interlaced video (field order %s, %.0f%% of sample frames combed): "
                "deinterlacing with bwdif; --deinterlace off keeps the fields",
                video.field_order, 100 * video.combed,
            )  # fmt: skip
        upscaler = Upscaler(
            args.model, args.scale, args.device, tile=args.tile, runtime=args.runtime
        )
        bar = _progress_bar(picture.frames_out(video.frame_count), show)  # ivtc: +-1 a chunk
        try:
            result = upscale_video(
                src,
                dst,
                upscaler,
                spec.settings,
                work_dir=args.work_dir,
                chunk_seconds=args.chunk_seconds,
                batch=args.batch,
                progress=bar.update,
                probed=probed,
                picture=picture,
            )
        finally:
            bar.close()
        frames, seconds = result.frames, result.seconds
        base.update(
            width=result.width,
            height=result.height,
            chunks=result.chunks,
            chunks_reused=result.chunks_reused,
        )
    _print_result(
        args,
        {
            **base,
            "frames": frames,
            "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 2) if seconds else 0.0,
            "peak_rss_mb": _peak_rss_mb(),
            "device": str(upscaler.device),
            # what ran the model ('openvino-bf16', ...); None: no frame needed it (reused)
            "runtime": "+".join(upscaler.runtime.used()) or None,
        },
    )
    return 0


def _default_model(args: argparse.Namespace, base: dict, info) -> None:
    """No --model: pick one that fits the source (`models.auto`) and say which and why."""
    if args.model is not None:
        return
    from upscaler.models.auto import choose_model

    choice = choose_model(info, args.scale)
    args.model = base["model"] = choice.model
    base["model_choice"] = choice.reason
    log.info("model %s: %s", choice.model, choice.reason)


def _plan_images(src: Path, dst: Path, scale: int) -> list[tuple[Path, Path]]:
    """(input, output) pairs for an image or a directory of images. Everything that can be
    refused is refused here, from file listings and image headers, before the model loads or
    anything is written: the number of images, each image's input and output pixels, and
    two inputs that would write the same output."""
    from upscaler.engine.image import IMAGE_SUFFIXES, check_image, image_files
    from upscaler.media.limits import Limits

    limits = Limits.from_env()
    if src.is_file():
        if dst.suffix.lower() != ".png":
            raise OutputError(f"{dst}: image output must be a .png file")
        check_image(src, scale, limits)
        return [(src, dst)]
    files = image_files(src, limits)
    if not files:
        raise InputError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) in this directory")
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"{dst}: exists and is not a directory")
    jobs: dict[str, Path] = {}
    for path in files:
        name = path.stem + ".png"
        if name in jobs:
            raise InputError(f"{src}: {jobs[name].name} and {path.name} would both write {name}")
        check_image(path, scale, limits)
        jobs[name] = path
    return [(path, dst / name) for name, path in jobs.items()]


def _upscale_images(
    jobs: list[tuple[Path, Path]], out_dir: Path | None, upscaler, show: bool
) -> int:
    from upscaler.engine.image import upscale_image_file

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    bar = _progress_bar(len(jobs), show and out_dir is not None, unit="image")
    try:
        for src, dst in jobs:
            upscale_image_file(src, dst, upscaler)
            bar.update(1)
    finally:
        bar.close()
    return len(jobs)


def cmd_probe(args: argparse.Namespace) -> int:
    from upscaler.media.probe import probe
    from upscaler.models.auto import choose_model

    info = probe(args.file)
    choice = choose_model(info, args.scale)
    if args.json:
        print(json.dumps({**info.to_dict(), "default_model": choice.to_dict()}, indent=2))
        return 0
    v = info.video
    colour = v.colour.names()
    print(f"{info.path}: {info.container}, {info.size_bytes} bytes, {info.duration_s:.3f} s")
    print(
        f"  video #{v.index}: {v.codec} {v.width}x{v.height} {v.pix_fmt} ({v.bit_depth}-bit), "
        f"{v.frame_rate} fps{' (VFR)' if v.vfr else ''}, {v.frame_count} frames, "
        f"time base {v.time_base}, rotation {v.rotation}"
    )
    sar, dar = v.sample_aspect_ratio, v.display_aspect_ratio
    print(
        f"  shape: SAR {sar.numerator}:{sar.denominator}, "
        f"DAR {dar.numerator}:{dar.denominator} ({float(dar):.3f})"
    )
    scan = "telecined" if v.telecined else "interlaced" if v.interlaced else "progressive"
    print(
        f"  scan: {scan} (field order "
        f"{v.field_order}, {v.interlaced_flags:.0%} of sample frames flagged interlaced, "
        f"{v.combed:.0%} combed)"
    )
    print("  colour: " + ", ".join(f"{k} {val}" for k, val in colour.items()))
    for s in [*info.audio, *info.subtitles, *info.other]:
        extra = f", {s.channels} ch @ {s.sample_rate} Hz" if s.type == "audio" else ""
        print(f"  {s.type} #{s.index}: {s.codec} [{s.language or 'und'}]{extra}")
    print(f"  default model (x{args.scale}): {choice.model} ({choice.reason})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from upscaler.evaluate.compare import compare_image, read_frame
    from upscaler.media.writer import atomic_output

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    reference = read_frame(args.reference, args.frame) if args.reference else None
    sheet = compare_image(
        read_frame(args.input, args.frame),
        models,
        args.scale,
        args.crop,
        device=args.device,
        reference=reference,
    )
    with atomic_output(Path(args.output)) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"wrote {args.output}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from upscaler.evaluate.bench import run_bench

    width, height = _parse_size(args.size)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
    results = run_bench(
        models,
        args.scale,
        width,
        height,
        args.batch,
        args.seconds,
        device=args.device,
        runtimes=runtimes,
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        header = ("model", "size", "device", "runtime", "preset")
        numbers = ("model fps", "e2e fps", "e2e/model", "model cpu", "e2e cpu")
        print(
            "".join(f"{h:<10}" for h in header)
            + "".join(f"{h:>10}" for h in numbers)
            + "  (cpu: CPU ms per frame, all threads)"
        )
        for r in results:
            print(
                f"{r.model:<10}{r.size:<10}{r.device:<10}{r.runtime:<10}{r.preset:<10}"
                f"{r.model_fps:>10.1f}{r.end_to_end_fps:>10.1f}{r.efficiency:>10.2f}"
                f"{r.model_cpu_ms:>10.1f}{r.end_to_end_cpu_ms:>10.1f}"
            )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if (args.dataset is None) == (args.clips is None):
        raise InputError("eval needs exactly one of --dataset and --clips")
    if args.clips is not None:
        return _eval_clips(args)
    from upscaler.evaluate.quality import evaluate, evaluate_compressed

    if args.crf is not None and len(args.crf) != 1:
        raise InputError("--dataset takes one --crf; several CRFs are for --clips")
    if args.crf is None and not args.plain:
        result = evaluate(args.model, args.scale, args.dataset, args.runtime)
    else:
        crf = args.crf[0] if args.crf else None
        result = evaluate_compressed(args.model, args.scale, args.dataset, crf, args.runtime)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row in result["images"]:
            print(
                f"  {row['image']:<24} PSNR-Y {row['psnr_y']:6.2f} dB  SSIM-Y {row['ssim_y']:.4f}"
            )
        detail = f", detail {result['detail_y']:.2f}" if "detail_y" in result else ""
        print(
            f"{args.model} x{args.scale} on {args.dataset}: PSNR-Y {result['psnr_y']:.2f} dB, "
            f"SSIM-Y {result['ssim_y']:.4f}{detail} ({len(result['images'])} images, "
            f"runtime {result['runtime']})"
        )
    return 0


def _eval_clips(args: argparse.Namespace) -> int:
    from upscaler.evaluate.footage import evaluate_footage, format_table

    models = [m.strip() for m in args.model.split(",") if m.strip()]
    crfs = args.crf if args.crf is not None else [0, 23, 28]
    result = evaluate_footage(models, args.scale, args.clips, crfs, args.frames)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _crf_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        msg = f"CRF must be integers like 0,23,28, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if any(not 0 <= v <= 51 for v in values):
        raise argparse.ArgumentTypeError(f"CRF must be within 0..51, not {text!r}")
    return values


def cmd_train(args: argparse.Namespace) -> int:
    from upscaler.train.__main__ import parse
    from upscaler.train.loop import train

    logging.getLogger().setLevel(logging.INFO)
    print(train(parse(args.settings)))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from upscaler.models.registry import available_models, shipped_weights_path

    if args.file:
        return _describe_model_file(args.file, args.json)
    for name, spec in sorted(available_models().items()):
        shipped = [f"x{s}" for s in spec.scales if shipped_weights_path(name, s)]
        weights = (
            "no weights needed"
            if name in ("bicubic", "lanczos")
            else (f"weights: {', '.join(shipped) or 'none shipped'}")
        )
        print(
            f"{name:<14} scales {', '.join(f'x{s}' for s in spec.scales):<12} {weights}  "
            f"{spec.description}"
        )
    return 0


def _describe_model_file(path: str, as_json: bool) -> int:
    """`models --file`: what a checkpoint or community model file holds."""
    from dataclasses import asdict

    from upscaler.models.registry import build_from_file

    model = build_from_file(path)
    info = getattr(model, "info", None)
    if info is not None:
        facts = {**asdict(info), "colour": info.colour, "source": "community (spandrel)"}
    else:
        facts = {
            "architecture": type(model).__name__,
            "scale": model.scale,
            "params": sum(p.numel() for p in model.parameters()),
            "colour": "luma (Y)" if model.channels == "y" else "RGB (made with the video's matrix)",
            "source": "upscaler checkpoint",
        }
    if as_json:
        print(json.dumps({"file": path, **facts}))
    else:
        print(f"{path}: {facts['architecture']} x{facts['scale']}, {facts['params']:,} params")
        for key, value in facts.items():
            if key not in ("architecture", "scale", "params"):
                print(f"  {key}: {value}")
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size must look like 426x240, not {text!r}") from None
    if w <= 0 or h <= 0:
        raise InputError(f"size must be positive, not {text!r}")
    return w, h


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from upscaler.engine.onnx_runtime import RUNTIMES

    p.add_argument(
        "--model", help="model name or checkpoint path (default: picked from the source)"
    )
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="CPU runtime: auto (the fastest of torch, onnx, openvino and, for the fast "
        "family on a CPU with bf16, openvino-bf16; measured once), torch, onnx, onnx-int8 "
        "(fast only), openvino, openvino-bf16",
    )


def _tile_arg(text: str) -> int | None:
    if text == "auto":
        return None
    value = int(text)
    if value < 0 or 0 < value < 32:
        raise argparse.ArgumentTypeError("tile must be auto, 0 (off) or >= 32")
    return value


def build_parser() -> argparse.ArgumentParser:
    from upscaler.cli_picture import add_picture_args
    from upscaler.engine.onnx_runtime import RUNTIMES

    parser = argparse.ArgumentParser(prog="upscaler", description=__doc__)
    parser.add_argument("--version", action="version", version=f"upscaler {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("upscale", help="upscale a video, an image or a directory of images")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    _add_model_args(p)
    p.add_argument("--crf", type=int, default=18, help="quality (0 = lossless, default 18)")
    p.add_argument("--codec", default="h264", help="h264 or h265 (default h264)")
    p.add_argument(
        "--preset",
        default="auto",
        help="x264/x265 preset; auto (default): ultrafast on the CPU, so the "
        "encoder keeps up with the model (veryfast: smaller files)",
    )
    p.add_argument("--tile", type=_tile_arg, default=None, help="auto, 0 (off) or tile size")
    p.add_argument("--batch", type=int, default=4, help="frames per model call (default 4)")
    p.add_argument("--chunk-seconds", type=float, default=10.0, help="chunk length (default 10)")
    p.add_argument("--work-dir", help="keep finished chunks here; re-run to resume")
    add_picture_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.set_defaults(func=cmd_upscale, preload=_UPSCALE_MODULES)

    p = sub.add_parser("probe", help="show streams, timing and colour of a media file")
    p.add_argument("file")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="for the model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe, preload=("upscaler.media.probe", "upscaler.models.auto"))

    p = sub.add_parser("compare", help="side-by-side crops of several models as a PNG")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--models", default="bicubic,fast")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--frame", type=int, default=0)
    p.add_argument("--crop", type=int, default=96, help="crop side in input pixels")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--reference", help="the true high-resolution image/video, shown as a last panel"
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("bench", help="model-only and end-to-end fps")
    p.add_argument("--models", default="bicubic,fast")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--size", default="426x240")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0, help="model-only timing length")
    p.add_argument("--device", default="auto")
    p.add_argument("--runtimes", default="auto", help="comma list of CPU runtimes to compare")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "eval", help="PSNR/SSIM on Y: a pair dataset (published protocol) or real-footage clips"
    )
    p.add_argument(
        "--model", default="fast", help="model name or checkpoint; --clips: a,b,... (bicubic too)"
    )
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument(
        "--dataset",
        help="folder of *_SRF_<s>_HR/LR.png pairs, or of plain HR .png images with --crf/--plain",
    )
    p.add_argument(
        "--clips",
        help="folder of video clips: shrink, H.264 at each --crf, upscale; PSNR/SSIM/tPSNR-Y",
    )
    p.add_argument(
        "--crf",
        type=_crf_list,
        default=None,
        help="H.264 CRF of the LR (--clips: a list, default 0,23,28)",
    )
    p.add_argument("--frames", type=int, default=16, help="--clips: frames per clip (16)")
    p.add_argument("--plain", action="store_true", help="HR-only folder, clean bicubic LR")
    p.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="--dataset: the CPU runtime, as for upscale (images of odd size run eager)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a model: key=value settings of TrainConfig")
    p.add_argument("settings", nargs="*", help="e.g. arch=fast scale=2 steps=20000")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("models", help="list the models and their shipped weights")
    p.add_argument("--file", help="describe one model file (.pt, .pth, .safetensors) instead")
    p.add_argument("--json", action="store_true", help="with --file: print one JSON object")
    p.set_defaults(func=cmd_models)

    from upscaler import cloud, cost, local_cli, package
    from upscaler.dataset import cli as dataset_cli
    from upscaler.live import cli as live_cli

    package.add_commands(sub)
    local_cli.add_commands(sub)
    cost.add_commands(sub)
    cloud.add_commands(sub)
    live_cli.add_commands(sub)
    dataset_cli.add_commands(sub)
    return parser


def _file_identity(path: str | None) -> tuple[int, int] | None:
    """(inode, mtime) of `path` if it is a file: tells whether a run replaced it."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns) if st else None


def _interrupted(output: str | None, before: tuple[int, int] | None) -> int:
    """Say truthfully what a Ctrl-C left behind. Outputs are renamed into place complete, so
    an output that changed during the run is whole: a late Ctrl-C does not unmake it."""
    if output and _file_identity(output) not in (None, before):
        print(f"upscaler: interrupted after {output} was complete; it is kept", file=sys.stderr)
    else:
        print("upscaler: interrupted; no output was written", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turning expected errors into one-line messages."""
    startup = _StartupInterrupt()
    try:
        with startup:  # Ctrl-C is deferred while torch, numpy, av... are imported
            parser = build_parser()  # imports torch
            args = parser.parse_args(argv)
            for name in getattr(args, "preload", ()):
                importlib.import_module(name)
    except KeyboardInterrupt:  # a second Ctrl-C during start-up
        startup.interrupted = True
    if startup.interrupted:
        print("upscaler: interrupted; no output was written", file=sys.stderr)
        return 130
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    output = getattr(args, "output", None)
    before = _file_identity(output)
    default_hook, sys.unraisablehook = sys.unraisablehook, _redeliver_swallowed_interrupt
    try:
        return func(args)
    except UpscalerError as exc:
        if args.debug:
            raise
        print(f"upscaler: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted(output, before)
    finally:
        sys.unraisablehook = default_hook


def _redeliver_swallowed_interrupt(unraisable: Any) -> None:
    """CPython drops a KeyboardInterrupt raised inside a weakref callback or a `__del__`
    ("Exception ignored in ..."), and the run went on as if Ctrl-C had never come: 2 of 4
    mid-chunk interrupts finished with exit 0 and a written output once the frame loop got
    fast (tests/reliability/test_crash_resume.py). SIGINT is sent again from another thread,
    a moment later, so it lands in ordinary code, where it interrupts (sent from here it is
    raised inside this hook and dropped too). Anything else goes to the default hook."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        threading.Timer(0.002, os.kill, (os.getpid(), signal.SIGINT)).start()
        return
    sys.__unraisablehook__(unraisable)


def run() -> None:
    """Console entry point: `main`, then exit with its status. A Ctrl-C arriving once the
    command has returned (during interpreter teardown) is ignored: the work is done, and
    it would only print a traceback from some library's finaliser or kill the exit status."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`upscaler probe x | head`): stop quietly, as `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    run()
