"""`upscaler live`: register with `add_commands(subparsers)` from the main CLI."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from upscaler.errors import InputError


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_commands(sub: Any) -> None:
    """Register `upscaler live` on the CLI's subparsers."""
    from upscaler.engine.onnx_runtime import RUNTIMES

    p = sub.add_parser(
        "live",
        help="enhance a live stream in real time: web view and/or MPEG-TS on stdout",
        description=(
            "SOURCE is a local file (played at its native rate, as if live), '-' for MPEG-TS "
            "on stdin, or an http(s) URL of a progressive stream (public addresses only). "
            "Late frames are degraded (cheap bicubic) or dropped instead of adding latency."
        ),
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--model", default="fast", help="model name or checkpoint (default fast)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="serve the side-by-side page here (loopback only, e.g. 127.0.0.1:8080; port 0: any)",
    )
    p.add_argument(
        "--out",
        metavar="-",
        help="write enhanced video + source audio as MPEG-TS to stdout ('-') or to a .ts file",
    )
    p.add_argument("--duration", type=_positive, help="stop after S seconds of source time")
    p.add_argument("--loop", action="store_true", help="loop a file source (demo)")
    p.add_argument(
        "--budget-ms", type=_positive, default=250.0, help="added-latency budget (default 250)"
    )
    p.add_argument(
        "--fallback",
        help="a cheaper model tried before plain bicubic when the main one is late",
    )
    p.add_argument("--queue", type=int, default=8, help="frames buffered at most (default 8)")
    p.add_argument("--threads", type=int, help="model CPU threads (default: physical cores)")
    p.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIMES,
        help="CPU runtime for the model (default auto: measured, as for upscale)",
    )
    p.add_argument("--no-drop", action="store_true", help="never drop: bicubic even when late")
    p.add_argument(
        "--preset",
        default="auto",
        help="x264 preset for --out (default auto: ultrafast, as for files)",
    )
    p.set_defaults(func=cmd_live)


def cmd_live(args: argparse.Namespace) -> int:
    """Run a live session; the JSON summary goes to stderr (stdout may carry the stream)."""
    from upscaler.live.session import LiveOptions, LiveSession
    from upscaler.media.writer import PRESETS

    if args.out not in (None, "-") and not args.out.endswith(".ts"):
        raise InputError("--out takes '-' (stdout) or a .ts file")
    if args.out == "-" and sys.stdout.isatty():
        raise InputError("--out - writes binary MPEG-TS: pipe it into a player or a file")
    if args.preset not in PRESETS:
        raise InputError(f"unknown preset {args.preset!r}")
    if args.queue < 1:
        raise InputError("--queue must be at least 1")
    if args.serve:
        from upscaler.live.server import parse_bind

        parse_bind(args.serve)  # refuse a non-loopback address before loading anything
    options = LiveOptions(
        source=args.source,
        model=args.model,
        scale=args.scale,
        device=args.device,
        fallback=args.fallback,
        budget=args.budget_ms / 1000,
        queue=args.queue,
        duration=args.duration,
        loop=args.loop,
        serve=args.serve,
        out=args.out,
        threads=args.threads,
        allow_drop=not args.no_drop,
        preset=args.preset,
        runtime=args.runtime,
    )

    def announce(session: LiveSession) -> None:
        if session.url:
            print(f"live: serving {session.url}", file=sys.stderr, flush=True)

    summary = LiveSession(options).run(announce)
    print("live: " + json.dumps(summary), file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m upscaler.live.cli ...` until the main CLI registers the command."""
    from upscaler.errors import UpscalerError

    parser = argparse.ArgumentParser(prog="upscaler")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UpscalerError as exc:
        print(f"upscaler: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
