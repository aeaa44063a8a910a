"""`python -m upscaler.train key=value ...`: set any `TrainConfig` field, then train.

Example: `python -m upscaler.train arch=fast scale=2 steps=20000 out_dir=runs/fast_x2`.
Values are parsed as JSON when they can be (numbers, true/false, {...}), else kept as text.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import fields

from upscaler.train.loop import TrainConfig, train


def parse(argv: list[str]) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    values = {}
    for arg in argv:
        key, sep, raw = arg.partition("=")
        if not sep or key not in names:
            raise SystemExit(f"bad argument {arg!r}; use key=value with key in: {sorted(names)}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return TrainConfig(**values)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(train(parse(sys.argv[1:])))
