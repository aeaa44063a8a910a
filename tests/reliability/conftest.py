"""Fixtures for the reliability tests: the bad-input corpus, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.corpus import Case, build


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Case]:
    cases = build(tmp_path_factory.mktemp("bad"))
    return {case.name: case for case in cases}


def leftovers(*dirs: Path) -> list[Path]:
    """Half-written files: atomic_output temporaries or upscaler scratch directories."""
    found: list[Path] = []
    for d in dirs:
        found += [p for p in d.rglob("*") if ".partial" in p.name or p.name.startswith("upscaler-")]
    return found


@pytest.fixture
def pipeline(monkeypatch):
    """A fresh moto account with the pipeline's resources (bicubic by default)."""
    from moto import mock_aws

    from lambdas import aws
    from lambdas.pipeline_local import Pipeline

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DEFAULT_MODEL", "bicubic")
    with mock_aws():
        created = Pipeline(prefix="rel").create()
        for key, value in created.env.items():
            monkeypatch.setenv(key, value)
        yield created
        aws.reset()


@pytest.fixture(scope="session")
def bicubic_endpoint_models():
    from lambdas.pipeline_local import endpoint_models

    return endpoint_models("bicubic", 2)
