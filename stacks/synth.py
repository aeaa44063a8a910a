"""Synthesize the app in-process: the template, the cloud assembly and the published assets.

The stack tests, the local pipeline (`upscaler pipeline-local`) and the end-to-end tests all
read the same synthesized stack; `cached` synthesizes it once per process and context (about
half a minute on two cores: the model artifact is built and cdk-nag runs).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "us-east-1"


@dataclass(frozen=True)
class Synthesis:
    """One synthesized stack: its template and where its assets were staged."""

    outdir: Path
    stack: Any  # UpscalerStack
    assembly: Any  # aws_cdk.cx_api.CloudAssembly
    artifact: Any  # the stack's CloudFormationStackArtifact
    template: dict[str, Any]

    def file_asset(self, url: str) -> Path:
        """The staged file of the asset published to `url` (an s3:// URL in the template)."""
        manifest = json.loads((self.outdir / f"{self.artifact.stack_name}.assets.json").read_text())
        key = url.rsplit("/", 1)[-1]
        for asset in manifest["files"].values():
            for destination in asset["destinations"].values():
                if destination["objectKey"] == key:
                    return self.outdir / asset["source"]["path"]
        raise LookupError(f"no file asset is published to {url}")


def synthesize(
    context: dict[str, Any] | None = None, outdir: str | Path | None = None
) -> Synthesis:
    """Synthesize the Upscaler app (cdk-nag runs as a validation plugin and fails on findings)."""
    from stacks import create_app

    folder = str(outdir) if outdir else None
    app, stack = create_app({"region": REGION, **(context or {})}, outdir=folder)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return Synthesis(Path(assembly.directory), stack, assembly, artifact, artifact.template)


@functools.cache
def _cached(items: tuple[tuple[str, Any], ...]) -> Synthesis:
    outdir = Path(tempfile.mkdtemp(prefix="upscaler-cdk-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    return synthesize(dict(items), outdir)


def cached(context: dict[str, Any] | None = None) -> Synthesis:
    """`synthesize` once per process and context, into a temporary directory."""
    return _cached(tuple(sorted((context or {}).items())))
