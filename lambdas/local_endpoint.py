"""The SageMaker asynchronous endpoint in-process: the one service of the stack moto cannot run.

`Artifact` serves the very model.tar.gz the synth published as an asset: extracted into a
temporary directory and imported with only that directory's `code/` importable (its own
`sys.path` head and module table: the repository's `upscaler`, `lambdas` and `stacks` are
invisible while it runs), so it serves exactly the models the archive holds. `InProcess` runs
the repository's `sagemaker/inference.py` with given models (handler-level tests).

`LocalEndpoint` answers `invoke_endpoint_async` the way the service does: output or failure
body to S3, then the success or error notification on the endpoint's SNS topics.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from lambdas import aws
from lambdas.aws import parse_s3_uri

REGION = "us-east-1"
INFERENCE = Path(__file__).resolve().parents[1] / "sagemaker" / "inference.py"
#: Top-level packages of this repository: hidden from the artifact's code while it runs.
PROJECT = ("upscaler", "lambdas", "stacks", "inference")


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_inference() -> ModuleType:
    """Import `sagemaker/inference.py` by path (the directory must never shadow the SDK)."""
    name = "upscaler_sagemaker_inference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, INFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _answer(
    module: ModuleType, models: Any, body: bytes, content_type: str, accept: str
) -> tuple[bytes, str]:
    data = module.input_fn(body, content_type)
    return module.output_fn(module.predict_fn(data, models), accept)


class InProcess:
    """The repository's inference handler with the given models (see `endpoint_models`)."""

    def __init__(self, models: Any) -> None:
        self.module, self.models = load_inference(), models

    def answer(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        return _answer(self.module, self.models, body, content_type, accept)


def _take(modules: dict[str, ModuleType]) -> dict[str, ModuleType]:
    """Remove and return the project's modules from a module table."""
    names = [n for n in modules if n.split(".")[0] in PROJECT]
    return {n: modules.pop(n) for n in names}


def _project_path(entry: str) -> bool:
    path = Path(entry or ".")
    return any((path / name).is_dir() for name in PROJECT[:3])


class Artifact:
    """A model.tar.gz served the way the container serves it, and nothing else."""

    def __init__(self, archive: Path, env: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="upscaler-endpoint-"))
        with tarfile.open(archive) as tar:
            tar.extractall(self.root, filter="data")
        self.code = self.root / "code"
        self.env = {"UPSCALER_DEVICE": "cpu", **(env or {})}
        self.modules: dict[str, ModuleType] = {}
        with self.active():
            self.module = importlib.import_module("inference")
            self.models = self.module.model_fn(str(self.root))

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The artifact's own modules and path, and the container's environment."""
        saved, path = _take(sys.modules), sys.path[:]
        sys.modules.update(self.modules)
        sys.path[:] = [str(self.code)] + [p for p in path if not _project_path(p)]
        importlib.invalidate_caches()
        try:
            with environment(**self.env):
                yield
        finally:
            self.modules = _take(sys.modules)
            sys.modules.update(saved)
            sys.path[:] = path

    def answer(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        with self.active():
            return _answer(self.module, self.models, body, content_type, accept)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LocalEndpoint:
    """An asynchronous SageMaker endpoint in-process: invocations queue up until `run()`."""

    def __init__(
        self,
        models: Any,
        root: str,
        success_topic: str,
        error_topic: str,
        output_path: str | None = None,
        failure_path: str | None = None,
    ) -> None:
        self.server = models if hasattr(models, "answer") else InProcess(models)
        self.inference = self.server.module  # the handler module (its BadRequest, hooks)
        self.output_path = output_path or f"{root.rstrip('/')}/results/"
        self.failure_path = failure_path or f"{root.rstrip('/')}/failures/"
        self.topics = {"Completed": success_topic, "Failed": error_topic}
        self.pending: list[dict[str, Any]] = []

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, str]:
        name = uuid.uuid4().hex
        call = {
            **kwargs,
            "InferenceId": kwargs.get("InferenceId") or name,
            "OutputLocation": f"{self.output_path}{name}.out",
            "FailureLocation": f"{self.failure_path}{name}-error.out",
        }
        self.pending.append(call)
        return {k: call[k] for k in ("InferenceId", "OutputLocation", "FailureLocation")}

    def _answer(self, call: dict[str, Any]) -> tuple[bytes, str]:
        bucket, key = parse_s3_uri(call["InputLocation"])
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return self.server.answer(body, call["ContentType"], call.get("Accept", ""))

    def _result(self, call: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        """Run one invocation; (status, failure reason, responseParameters) as SageMaker's."""
        try:
            body, content_type = self._answer(call)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)
            kind = "client" if 400 <= status < 500 else "server"
            message = getattr(exc, "message", None) or str(exc)
            reason = (
                f"ClientError: Received {kind} error ({status}) from primary with message "
                f'"{message}". See the endpoint logs for more information.'
            )
            _put(call["FailureLocation"], message.encode())
            return "Failed", reason, {"failureLocation": call["FailureLocation"]}
        _put(call["OutputLocation"], body)
        return (
            "Completed",
            "",
            {"contentType": content_type, "outputLocation": call["OutputLocation"]},
        )

    def run(self, reverse: bool = False) -> int:
        """Answer every queued invocation (newest first with `reverse`) and publish each
        result's notification; return how many were answered."""
        calls, self.pending = self.pending, []
        for call in reversed(calls) if reverse else calls:
            status, reason, response = self._result(call)
            # The notification SageMaker publishes to the endpoint's SNS success/error topic,
            # field for field as documented in "Check prediction results":
            # https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html
            note = {
                "awsRegion": REGION,
                "eventTime": _now(),
                "receivedTime": _now(),
                "invocationStatus": status,
                "requestParameters": {
                    "contentType": call["ContentType"],
                    "endpointName": call["EndpointName"],
                    "inputLocation": call["InputLocation"],
                },
                "responseParameters": response,
                "inferenceId": call["InferenceId"],
                "eventVersion": "1.0",
                "eventSource": "aws:sagemaker",
                "eventName": "InferenceResult",
            }
            if reason:
                note["failureReason"] = reason
            aws.client("sns").publish(TopicArn=self.topics[status], Message=json.dumps(note))
        return len(calls)


def _put(uri: str, body: bytes) -> None:
    bucket, key = parse_s3_uri(uri)
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def endpoint_models(model: str, scale: int) -> Any:
    """What `model_fn` loads from an archive serving only `model` x`scale` (in-process)."""
    from upscaler.package import resolve

    entry = resolve(model, scale)
    with tempfile.TemporaryDirectory() as model_dir:
        root = Path(model_dir)
        if entry.checkpoint is not None:
            (root / "models").mkdir()
            shutil.copyfile(entry.checkpoint, root / str(entry.member))
        (root / "manifest.json").write_text(json.dumps({entry.name: [scale]}))
        with environment(UPSCALER_MODEL=entry.name, UPSCALER_SCALE=str(scale)):
            return load_inference().model_fn(model_dir)
