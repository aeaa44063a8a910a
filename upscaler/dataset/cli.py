"""`upscaler dataset build` and `upscaler finetune` (registered by `add_commands(sub)`)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    """Register `dataset build` and `finetune` on the CLI's subparsers."""
    group = sub.add_parser("dataset", help="training data from your own videos")
    commands = group.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "build",
        help="pick sharp frames per scene, drop duplicates, cut HR patches into shards",
    )
    p.add_argument("sources", nargs="+", help="videos, image folders or http(s) URLs")
    p.add_argument("-o", "--output", required=True, help="dataset directory (replaced at the end)")
    p.add_argument("--patch", type=int, default=96, help="patch side in pixels (default 96)")
    p.add_argument("--per-scene", type=int, default=2, help="frames kept per scene (default 2)")
    p.add_argument(
        "--per-frame", type=int, default=16, help="patches cut per frame at most (default 16)"
    )
    p.add_argument("--max-patches", type=int, default=None, help="stop after this many patches")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--licence", default="", help="licence note recorded in the manifest")
    p.add_argument("--skip-bad", action="store_true", help="skip unusable sources (listed)")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("finetune", help="fine-tune a shipped model on a dataset of your footage")
    p.add_argument("--from", dest="base", default="fast", help="model name or .pt (default fast)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--data", required=True, help="dataset directory (or a uint8 .npy)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--holdout", type=float, default=0.1, help="fraction held back (default 0.1)")
    p.add_argument("--degradation", default="bicubic", choices=("bicubic", "real"))
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--set5",
        default=None,
        help="Set5 folder for the before/after check (default ../shared/datasets/Set5; 'none')",
    )
    p.add_argument("-o", "--output", required=True, help="checkpoint to write, e.g. my-fast.pt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_finetune)


def cmd_build(args: argparse.Namespace) -> int:
    from upscaler.dataset.build import BuildSettings, build_dataset

    settings = BuildSettings(
        patch=args.patch,
        per_scene=args.per_scene,
        patches_per_frame=args.per_frame,
        max_patches=args.max_patches,
        seed=args.seed,
        licence=args.licence,
    )
    result = build_dataset(args.sources, args.output, settings, skip_bad=args.skip_bad)
    summary = {
        "output": result["output"],
        "patches": result["count"],
        "patch": result["patch"],
        "shards": len(result["shards"]),
        "frames": len(result["frames"]),
        "sources": result["sources"],
        "skipped": result["skipped"],
        "seconds": result["seconds"],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    for s in result["sources"]:
        print(
            f"  {s['name']}: {s['frames_decoded']} frames, {s['scenes']} scenes, "
            f"{s['frames_used']} used, {s['duplicates']} duplicates, {s['blurry']} blurry, "
            f"{s['patches']} patches"
        )
    for s in result["skipped"]:
        print(f"  skipped {s['source']}: {s['reason']}")
    print(
        f"wrote {summary['output']}: {summary['patches']} patches of {summary['patch']}px in "
        f"{summary['shards']} shard(s) ({summary['seconds']} s)"
    )
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from upscaler.dataset.finetune import SET5, finetune

    logging.getLogger("upscaler").setLevel(logging.INFO)
    report = finetune(
        args.base,
        args.scale,
        args.data,
        args.steps,
        Path(args.output),
        lr=args.lr,
        holdout=args.holdout,
        batch_size=args.batch,
        seed=args.seed,
        device=args.device,
        degradation=args.degradation,
        set5=None if args.set5 == "none" else Path(args.set5) if args.set5 else SET5,
    )
    if args.json:
        print(json.dumps(report))
        return 0

    def line(label: str, before: Any, after: Any) -> str:
        if before is None:
            return f"  {label:<28} (not available)"
        return f"  {label:<28} {before:6.2f} -> {after:6.2f} dB ({after - before:+.2f})"

    print(f"fine-tuned {args.base} x{args.scale} for {args.steps} steps on {args.data}:")
    print(
        line(
            f"held-back ({report['holdout_patches']} patches)",
            report["holdout_psnr_before"],
            report["holdout_psnr_after"],
        )
    )
    print(line("training sample", report["train_psnr_before"], report["train_psnr_after"]))
    print(line("Set5", report["set5_psnr_before"], report["set5_psnr_after"]))
    print(f"wrote {report['output']} (use it with --model {report['output']})")
    return 0
