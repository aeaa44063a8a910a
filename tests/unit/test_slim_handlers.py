"""The slim Lambda image: the pipeline's handlers import no torch or matplotlib, and its
requirements carry the same pins as the full image without them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The handlers on lambdas/Dockerfile.slim (stacks/pipeline.py); `dataset` is on the full image.
SLIM_HANDLERS = ("fetch", "split", "dispatch", "collect", "merge", "sweep")
HEAVY = ("torch", "matplotlib")
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==(\S+)$", re.M)


def test_every_handler_is_on_one_image_or_the_other():
    handlers = {
        p.stem for p in (REPO / "lambdas").glob("*.py") if "\ndef handler(" in p.read_text()
    }
    assert handlers == {*SLIM_HANDLERS, "dataset"}


@pytest.mark.parametrize("name", SLIM_HANDLERS)
def test_slim_handler_imports_no_torch(name):
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module('lambdas.{name}')\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []


def test_slim_requirements_are_the_full_pins_without_torch_and_matplotlib():
    full = dict(PIN.findall((REPO / "requirements.txt").read_text()))
    slim_text = (REPO / "requirements-slim.txt").read_text()
    slim = dict(PIN.findall(slim_text))
    assert "-r requirements-aws.txt" in slim_text
    assert slim and all(full[name] == version for name, version in slim.items())
    assert not set(slim) & set(HEAVY)
    dockerfile = (REPO / "lambdas" / "Dockerfile.slim").read_text()
    assert "requirements-slim.txt" in dockerfile and "requirements.txt " not in dockerfile
