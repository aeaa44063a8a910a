"""Reliability figures for docs/RELIABILITY.md: many more fuzz cases than `make test`, and the
full concurrent-load run through the moto pipeline.

Usage:
  python -m benchmarks.reliability fuzz --cases 1000 [--containers mp4,matroska,mpegts]
  python -m benchmarks.reliability load --jobs 24 --workers 4
Both print one JSON object; the fuzz run exits 1 if any case broke the property.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from tests.clips import ClipSpec, make_clip
from tests.reliability.fuzz import check_property, mutate, tally
from tests.reliability.load import run_load
from upscaler.engine.runner import Upscaler

SUFFIX = {"mp4": ".mp4", "matroska": ".mkv", "mpegts": ".ts"}


def fuzz(cases: int, seed: int, containers: list[str], timeout: int) -> dict:
    upscaler = Upscaler("bicubic", 2, "cpu")
    report: dict = {"cases": 0, "seconds": 0.0, "by_container": {}, "broken": []}

    def alarm(signum, frame):
        raise TimeoutError(f"case ran past {timeout} s")

    signal.signal(signal.SIGALRM, alarm)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        for container in containers:
            spec = ClipSpec(width=48, height=32, frames=8, gop=4, rate=Fraction(25),
                            container=container)  # fmt: skip
            base = make_clip(Path(tmp) / f"seed{SUFFIX[container]}", spec).read_bytes()
            outcomes = []
            for i in range(cases):
                case_seed = seed + i
                data = mutate(base, random.Random(case_seed))
                work = Path(tmp) / f"{container}-{i}"
                work.mkdir()
                signal.alarm(timeout)
                try:
                    outcomes.append(check_property(data, work, upscaler))
                except BaseException as exc:  # the property broke: keep the reproducer
                    keep = Path(tempfile.gettempdir()) / f"fuzz-broken-{container}-{case_seed}"
                    keep.write_bytes(data)
                    broken = {"container": container, "seed": case_seed}
                    broken.update(error=repr(exc)[:300], file=str(keep))
                    report["broken"].append(broken)
                    outcomes.append("BROKEN")
                finally:
                    signal.alarm(0)
                    for path in work.iterdir():
                        path.unlink()
                    work.rmdir()
            report["by_container"][container] = tally(outcomes)
            report["cases"] += cases
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def load(jobs: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        result = run_load(Path(tmp), jobs, workers, timeout=900)
    return {
        "jobs": result.jobs,
        "workers": result.workers,
        "done": result.done,
        "failed": result.failed,
        "seconds": round(result.seconds, 1),
        "jobs_per_minute": round(result.jobs_per_minute, 1),
        "frames_per_second": round(result.fps, 1),
        "peak_rss_mb": result.peak_rss_mb,
        "rss_growth_mb": result.rss_growth_mb,
    }


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("fuzz")
    p.add_argument("--cases", type=int, default=1000, help="per container")
    p.add_argument("--seed", type=int, default=5000)
    p.add_argument("--containers", default="mp4,matroska,mpegts")
    p.add_argument("--timeout", type=int, default=30, help="seconds per case")
    p = sub.add_parser("load")
    p.add_argument("--jobs", type=int, default=24)
    p.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    if args.what == "fuzz":
        report = fuzz(args.cases, args.seed, args.containers.split(","), args.timeout)
        print(json.dumps(report, indent=1))
        sys.exit(1 if report["broken"] else 0)
    print(json.dumps(load(args.jobs, args.workers), indent=1))


if __name__ == "__main__":
    main()
