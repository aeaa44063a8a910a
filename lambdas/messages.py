"""Messages between the handlers: work items and SageMaker's notifications (the S3 layout
they point into is the cloud contract's, `upscaler.cloud_contract`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from upscaler.cloud_contract import chunk_key, context_chunks, upscaled_key

#: WorkItem fields that route the answer back (in the inference id), not sent as the request.
ROUTING = ("job_id", "index", "attempt")


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
    deinterlace: str = "off"  # resolved at split: off, frame, field or ivtc
    square_pixels: bool = False
    before: list[str] = field(default_factory=list)  # neighbour chunks, for window models
    after: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: str) -> WorkItem:
        return cls(**json.loads(body))

    def request(self) -> dict[str, Any]:
        """The endpoint's job spec (see sagemaker/inference.py): everything but the routing
        (which job, chunk and attempt: the inference id carries those)."""
        return {k: v for k, v in asdict(self).items() if k not in ROUTING}


def unwrap_sns(body: str) -> dict[str, Any]:
    """The SageMaker async notification inside an SQS body (SNS envelope or raw delivery)."""
    data = json.loads(body)
    if data.get("Type") == "Notification" and "Message" in data:
        return json.loads(data["Message"])
    return data


def work_item(job: dict[str, Any], index: int, attempt: int, work_bucket: str) -> WorkItem:
    """The work message for chunk `index` of `job` (a job row)."""
    job_id = str(job["job_id"])
    before, after = context_chunks(job_id, index, int(job["chunk_count"]))
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
        deinterlace=str(job["deinterlace"]),
        square_pixels=bool(job["square_pixels"]),
        before=[f"s3://{work_bucket}/{key}" for key in before],
        after=[f"s3://{work_bucket}/{key}" for key in after],
    )
