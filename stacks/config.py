"""Deploy-time settings: CDK context parameters (`-c name=value` or cdk.json) with defaults.

Every parameter is documented in docs/AWS.md; `DEFAULTS` is the single source of the defaults
(cdk.json repeats them for discoverability, and a test keeps the two equal).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

DEFAULTS: dict[str, Any] = {
    "stack_name": "Upscaler",
    "instance_type": "ml.g4dn.xlarge",
    "max_instances": 2,
    "max_concurrent_invocations": 1,
    "backlog_per_instance": 2,
    "model_data_uri": "",
    "pytorch_version": "2.6",
    "py_version": "py312",
    "inference_image_uri": "",
    "chunk_seconds": 10,
    "max_chunk_attempts": 3,
    "log_level": "INFO",
    "work_expiry_days": 7,
    "media_memory_mb": 3008,
    "alarm_email": "",
    "default_model": "esrgan-lite",
    "default_scale": 4,
    "served_models": "",
    "reserve_concurrency": True,
    "fetch_concurrency": 5,
    "split_concurrency": 10,
    "dispatch_concurrency": 5,
    "collect_concurrency": 10,
    "merge_concurrency": 5,
    "sweep_concurrency": 1,
    "dataset_concurrency": 2,
}
#: Functions with a `<name>_concurrency` context parameter (reserved concurrency).
CONCURRENCY = ("fetch", "split", "dispatch", "collect", "merge", "sweep", "dataset")

# The Deep Learning Containers registry account of the regions where it is not 763104351884
# (fallback when the SageMaker SDK's image_uris cannot be imported).
_DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
}


def dlc_account(region: str) -> str:
    """The Deep Learning Containers registry account of `region`."""
    return _DLC_ACCOUNTS.get(region, "763104351884")


_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


def _flag(value: Any) -> bool:
    """A boolean context value (`-c reserve_concurrency=false` arrives as a string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"invalid context parameters: {value!r} is not true/false")


@dataclass(frozen=True)
class Settings:
    """The validated deploy-time settings of one Upscaler stack."""

    stack_name: str
    region: str
    account: str | None
    instance_type: str
    max_instances: int
    max_concurrent_invocations: int
    backlog_per_instance: int
    model_data_uri: str  # "" = the artifact built from this repository at synth (an asset)
    pytorch_version: str
    py_version: str
    inference_image_uri: str
    chunk_seconds: int
    max_chunk_attempts: int
    log_level: str
    work_expiry_days: int
    media_memory_mb: int
    alarm_email: str
    default_model: str
    default_scale: int
    served_models: str  # JSON {model: [scales]} of an own artifact; "" = the built one's
    reserve_concurrency: bool
    concurrency: dict[str, int]

    @property
    def endpoint_name(self) -> str:
        """SageMaker names (and the ARNs IAM matches) are case-insensitive: use lower case."""
        return f"{self.stack_name.lower()}-endpoint"

    @property
    def gpu(self) -> bool:
        return self.instance_type.split(".")[1][:1] in ("g", "p")

    def model_data_location(self) -> tuple[str, str] | None:
        """(bucket, key) of an explicit model artifact, or None for the one built at synth."""
        if not self.model_data_uri:
            return None
        match = _S3_URI.match(self.model_data_uri)
        assert match, self.model_data_uri  # validated in from_node
        return match.group(1), match.group(2)

    def own_manifest(self) -> dict[str, list[int]]:
        """`served_models` parsed: what a user's own artifact serves ({model: [scales]})."""
        data = json.loads(self.served_models)
        if not isinstance(data, dict) or not data:
            raise ValueError("a JSON object {model: [scales]} is needed")
        manifest = {}
        for name, scales in data.items():
            if not isinstance(scales, list) or not all(s in (2, 3, 4) for s in scales):
                raise ValueError(f"{name!r}: scales must be a list of 2, 3, 4")
            manifest[str(name)] = sorted(scales)
        return manifest

    def image_uri(self) -> str:
        """The PyTorch inference container for the instance type, fixed at synth time."""
        if self.inference_image_uri:
            return self.inference_image_uri
        scope = "gpu" if self.gpu else "cpu"
        try:
            from sagemaker.core import image_uris  # offline: reads the SDK's bundled JSON

            return image_uris.retrieve(
                framework="pytorch",
                region=self.region,
                version=self.pytorch_version,
                py_version=self.py_version,
                instance_type=self.instance_type,
                image_scope="inference",
            )
        except ImportError:
            account = dlc_account(self.region)
            domain = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
            tag = f"{self.pytorch_version}-{scope}-{self.py_version}"
            return f"{account}.dkr.ecr.{self.region}.{domain}/pytorch-inference:{tag}"

    @classmethod
    def from_node(cls, node: Node) -> Settings:
        """Read the context of `node` (the app), apply defaults and validate."""

        def get(name: str) -> Any:
            value = node.try_get_context(name)
            return DEFAULTS[name] if value is None else value

        region = (
            node.try_get_context("region")
            or os.environ.get("CDK_DEFAULT_REGION")
            or os.environ.get("AWS_REGION")
            or "us-east-1"
        )
        settings = cls(
            stack_name=str(get("stack_name")),
            region=str(region),
            account=node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            instance_type=str(get("instance_type")),
            max_instances=int(get("max_instances")),
            max_concurrent_invocations=int(get("max_concurrent_invocations")),
            backlog_per_instance=int(get("backlog_per_instance")),
            model_data_uri=str(get("model_data_uri")),
            pytorch_version=str(get("pytorch_version")),
            py_version=str(get("py_version")),
            inference_image_uri=str(get("inference_image_uri")),
            chunk_seconds=int(get("chunk_seconds")),
            max_chunk_attempts=int(get("max_chunk_attempts")),
            log_level=str(get("log_level")).upper(),
            work_expiry_days=int(get("work_expiry_days")),
            media_memory_mb=int(get("media_memory_mb")),
            alarm_email=str(get("alarm_email")),
            default_model=str(get("default_model")),
            default_scale=int(get("default_scale")),
            served_models=str(get("served_models")),
            reserve_concurrency=_flag(get("reserve_concurrency")),
            concurrency={name: int(get(f"{name}_concurrency")) for name in CONCURRENCY},
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,40}", self.stack_name):
            problems.append(f"stack_name {self.stack_name!r}: letters, digits, '-', at most 41")
        if not _INSTANCE.match(self.instance_type):
            problems.append(f"instance_type {self.instance_type!r} is not like ml.g4dn.xlarge")
        if not 1 <= self.max_instances <= 20:
            problems.append(f"max_instances {self.max_instances} must be 1..20")
        if not 1 <= self.max_concurrent_invocations <= 1000:
            problems.append("max_concurrent_invocations must be 1..1000")
        if self.backlog_per_instance < 1:
            problems.append("backlog_per_instance must be at least 1")
        if self.model_data_uri and not _S3_URI.match(self.model_data_uri):
            problems.append(f"model_data_uri {self.model_data_uri!r} is not s3://bucket/key")
        if not 1 <= self.chunk_seconds <= 600:
            problems.append("chunk_seconds must be 1..600")
        if not 1 <= self.max_chunk_attempts <= 10:
            problems.append("max_chunk_attempts must be 1..10")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"log_level {self.log_level!r}")
        if not 1 <= self.work_expiry_days <= 365:
            problems.append("work_expiry_days must be 1..365")
        if not 512 <= self.media_memory_mb <= 10240:
            problems.append("media_memory_mb must be 512..10240")
        if self.default_scale not in (2, 3, 4):
            problems.append("default_scale must be 2, 3 or 4")
        for name, value in self.concurrency.items():
            # SQS event source mappings need a maximum concurrency of at least 2.
            if not 2 <= value <= 1000 and not (value == 1 and name in ("fetch", "sweep")):
                problems.append(f"{name}_concurrency {value} must be 2..1000")
        if self.served_models:
            try:
                self.own_manifest()
            except ValueError as exc:
                problems.append(f"served_models: {exc}")
        elif self.model_data_uri:
            problems.append("model_data_uri needs served_models, e.g. '{\"fast\": [2, 4]}'")
        if problems:
            raise ValueError("invalid context parameters: " + "; ".join(problems))
