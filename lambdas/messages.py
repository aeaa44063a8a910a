"""Message and object layouts shared by the handlers: S3 keys, work items, notifications."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def chunk_name(index: int) -> str:
    return f"chunk_{index:05d}"


def chunk_key(job_id: str, index: int) -> str:
    """The source chunk (stream copy of the input) in the work bucket."""
    return f"jobs/{job_id}/chunks/{chunk_name(index)}.mp4"


def upscaled_key(job_id: str, index: int) -> str:
    """The upscaled chunk the endpoint writes."""
    return f"jobs/{job_id}/up/{chunk_name(index)}.mp4"


def request_key(job_id: str, index: int, attempt: int) -> str:
    """The JSON request body of one asynchronous invocation."""
    return f"jobs/{job_id}/requests/{chunk_name(index)}-{attempt}.json"


def inference_id(job_id: str, index: int, attempt: int) -> str:
    return f"{job_id}:{index}:{attempt}"


def parse_inference_id(value: str) -> tuple[str, int, int]:
    """`job:index:attempt` -> its parts; ValueError when it is not one of ours."""
    job_id, index, attempt = value.rsplit(":", 2)
    if not JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id, int(index), int(attempt)


@dataclass(frozen=True)
class WorkItem:
    """One chunk to upscale: S3 pointers and settings only (never media)."""

    job_id: str
    index: int
    attempt: int
    chunk: str
    output: str
    model: str
    scale: int
    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: str) -> WorkItem:
        return cls(**json.loads(body))

    def request(self) -> dict[str, Any]:
        """The endpoint's job spec (see sagemaker/inference.py)."""
        return {
            "chunk": self.chunk,
            "output": self.output,
            "model": self.model,
            "scale": self.scale,
            "codec": self.codec,
            "crf": self.crf,
            "preset": self.preset,
        }


def unwrap_sns(body: str) -> dict[str, Any]:
    """The SageMaker async notification inside an SQS body (SNS envelope or raw delivery)."""
    data = json.loads(body)
    if data.get("Type") == "Notification" and "Message" in data:
        return json.loads(data["Message"])
    return data


def work_item(job: dict[str, Any], index: int, attempt: int, work_bucket: str) -> WorkItem:
    """The work message for chunk `index` of `job` (a job row)."""
    job_id = str(job["job_id"])
    return WorkItem(
        job_id=job_id,
        index=index,
        attempt=attempt,
        chunk=f"s3://{work_bucket}/{chunk_key(job_id, index)}",
        output=f"s3://{work_bucket}/{upscaled_key(job_id, index)}",
        model=str(job["model"]),
        scale=int(job["scale"]),
        codec=str(job["codec"]),
        crf=int(job["crf"]),
        preset=str(job["preset"]),
    )
