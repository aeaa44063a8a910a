"""The cloud contract: names the stack, the Lambdas, the endpoint and the CLI must agree on.

S3 layout, environment variable names, stack output names, job states and the job table's
row schema live here and nowhere else, so a rename cannot leave one side behind. Pure
constants and tiny pure functions: importable by `stacks/` (synth), `lambdas/` (runtime) and
the CLI without boto3, torch or CDK.

Object layout:

- input bucket:  `uploads/<job_id>/<file>` (the S3 notification to split filters on `uploads/`)
- work bucket:   `jobs/<job_id>/chunks/*` (split), `jobs/<job_id>/requests/*` (dispatch),
                 `jobs/<job_id>/up/*` (the endpoint), `results/*` and `failures/*` (SageMaker
                 async output/failure bodies), `models/model.tar.gz` (default model artifact)
- output bucket: `outputs/<job_id>/<name>_x<scale>.mp4`, written via `tmp/outputs/...` first
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

# --- S3 layout ---------------------------------------------------------------------------
UPLOAD_PREFIX = "uploads/"
JOBS_PREFIX = "jobs/"
CHUNKS = "jobs/*/chunks/*"
REQUESTS = "jobs/*/requests/*"
UPSCALED = "jobs/*/up/*"
RESULTS_PREFIX = "results/"
FAILURES_PREFIX = "failures/"
MODEL_KEY = "models/model.tar.gz"
OUTPUTS_PREFIX = "outputs/"
OUTPUT_TMP_PREFIX = "tmp/"

#: A job id: also a key segment and the first part of an inference id.
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def chunk_name(index: int) -> str:
    return f"chunk_{index:05d}"


def job_prefix(job_id: str) -> str:
    """Everything the pipeline writes for one job in the work bucket."""
    return f"{JOBS_PREFIX}{job_id}/"


def chunk_key(job_id: str, index: int) -> str:
    """The source chunk (stream copy of the input) in the work bucket."""
    return f"{job_prefix(job_id)}chunks/{chunk_name(index)}.mp4"


#: Source chunks a work item names on each side of its own (nearest first after it, nearest
#: last before it): a multi-frame model of window radius r reads r frames across the border,
#: and every chunk holds at least one frame, so this covers windows up to radius 2.
CONTEXT_CHUNKS = 2


def context_chunks(job_id: str, index: int, count: int) -> tuple[list[str], list[str]]:
    """The chunk keys before and after chunk `index` of `count` a window model may read."""
    before = range(max(0, index - CONTEXT_CHUNKS), index)
    after = range(index + 1, min(count, index + 1 + CONTEXT_CHUNKS))
    return [chunk_key(job_id, i) for i in before], [chunk_key(job_id, i) for i in after]


def upscaled_prefix(job_id: str) -> str:
    return f"{job_prefix(job_id)}up/"


def upscaled_key(job_id: str, index: int) -> str:
    """The upscaled chunk the endpoint writes."""
    return f"{upscaled_prefix(job_id)}{chunk_name(index)}.mp4"


def request_key(job_id: str, index: int, attempt: int) -> str:
    """The JSON request body of one asynchronous invocation."""
    return f"{job_prefix(job_id)}requests/{chunk_name(index)}-{attempt}.json"


def upload_key(job_id: str, file_name: str) -> str:
    """Where `upscaler submit` and fetch put a source video in the input bucket."""
    return f"{UPLOAD_PREFIX}{job_id}/{file_name}"


def output_key(job_id: str, name: str, scale: int) -> str:
    """The finished video in the output bucket."""
    return f"{OUTPUTS_PREFIX}{job_id}/{name}_x{int(scale)}.mp4"


def output_tmp_key(key: str) -> str:
    """Where merge uploads before the copy to `key` (no partial object is ever visible)."""
    return f"{OUTPUT_TMP_PREFIX}{key}"


def prefix_job_id(key: str) -> str | None:
    """The `<job_id>` of `uploads/<job_id>/<file>` (the id `submit` and fetch chose), if any."""
    parts = key.split("/")
    if len(parts) >= 3 and f"{parts[0]}/" == UPLOAD_PREFIX and JOB_ID.match(parts[1]):
        return parts[1]
    return None


def object_id(bucket: str, key: str, version: str) -> str:
    """One uploaded object: its key and its version id (or, unversioned, its ETag)."""
    return f"s3://{bucket}/{key}#{version}"


def object_job_id(bucket: str, key: str, version: str) -> str:
    """The job of one object whose key names no free job: a stable hash of the object."""
    return hashlib.sha256(object_id(bucket, key, version).encode()).hexdigest()[:20]


def safe_stem(key: str) -> str:
    """A file-name stem safe for S3 keys and local paths."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(key).stem).strip("._")
    return stem[:80] or "video"


def inference_id(job_id: str, index: int, attempt: int) -> str:
    return f"{job_id}:{index}:{attempt}"


def parse_inference_id(value: str) -> tuple[str, int, int]:
    """`job:index:attempt` -> its parts; ValueError when it is not one of ours."""
    job_id, index, attempt = value.rsplit(":", 2)
    if not JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id, int(index), int(attempt)


# --- environment variables the stack sets on the functions ------------------------------
class Env:
    """Environment variable names (values are set by stacks/pipeline.py)."""

    INPUT_BUCKET = "INPUT_BUCKET"
    WORK_BUCKET = "WORK_BUCKET"
    OUTPUT_BUCKET = "OUTPUT_BUCKET"
    JOB_TABLE = "JOB_TABLE"
    WORK_QUEUE_URL = "WORK_QUEUE_URL"
    MERGE_QUEUE_URL = "MERGE_QUEUE_URL"
    ENDPOINT_NAME = "ENDPOINT_NAME"
    MAX_CHUNK_ATTEMPTS = "MAX_CHUNK_ATTEMPTS"
    CHUNK_SECONDS = "CHUNK_SECONDS"
    UPLOAD_PREFIX = "UPLOAD_PREFIX"
    INVOCATION_TIMEOUT_S = "INVOCATION_TIMEOUT_S"
    #: The endpoint's instance type and merge's /tmp size: split's estimates (fail before paying).
    INSTANCE_TYPE = "INSTANCE_TYPE"
    MERGE_SCRATCH_MIB = "MERGE_SCRATCH_MIB"
    STALE_AFTER_S = "STALE_AFTER_S"
    FETCH_MAX_BYTES = "FETCH_MAX_BYTES"
    FETCH_MAX_SECONDS = "FETCH_MAX_SECONDS"
    #: The model and scale of an upload whose metadata names none.
    DEFAULT_MODEL = "DEFAULT_MODEL"
    DEFAULT_SCALE = "DEFAULT_SCALE"
    #: What the endpoint serves, JSON {"model": [scales]}: split refuses anything else.
    SERVED_MODELS = "SERVED_MODELS"
    CODEC = "CODEC"
    CRF = "CRF"
    PRESET = "PRESET"
    LOG_LEVEL = "LOG_LEVEL"
    POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    #: The endpoint reads and writes chunks only in these buckets (comma-separated).
    ALLOWED_BUCKETS = "ALLOWED_BUCKETS"
    #: The dataset builder's patch settings (lambdas/dataset.py).
    DATASET_PATCH = "DATASET_PATCH"
    DATASET_PER_SCENE = "DATASET_PER_SCENE"
    DATASET_MAX_PATCHES = "DATASET_MAX_PATCHES"
    DATASET_SEED = "DATASET_SEED"


#: Object metadata (x-amz-meta-*) an upload may carry to choose its job's settings: job spec
#: field -> metadata key (hyphens: proxies drop header names with underscores).
METADATA_FIELDS = {
    "model": "model",
    "scale": "scale",
    "codec": "codec",
    "crf": "crf",
    "deinterlace": "deinterlace",
    "square_pixels": "square-pixels",
}


def upload_metadata(fields: dict[str, Any]) -> dict[str, str]:
    """Job spec fields -> the upload's metadata (text; fields not given are left out)."""
    text = {True: "true", False: "false"}
    return {
        METADATA_FIELDS[k]: text[v] if isinstance(v, bool) else str(v)
        for k, v in fields.items()
        if v is not None and k in METADATA_FIELDS
    }


def metadata_fields(metadata: dict[str, str]) -> dict[str, str | None]:
    """An upload's metadata -> job spec fields (None where not given)."""
    return {field: metadata.get(key) for field, key in METADATA_FIELDS.items()}


# --- stack outputs the CLI reads --------------------------------------------------------
class Output:
    """CloudFormation output names (`upscaler submit/status --stack NAME` reads them)."""

    INPUT_BUCKET = "InputBucketName"
    UPLOAD_PREFIX = "UploadPrefix"
    WORK_BUCKET = "WorkBucketName"
    OUTPUT_BUCKET = "OutputBucketName"
    JOB_TABLE = "JobTableName"
    FETCH_FUNCTION = "FetchFunctionName"
    #: The SERVED_MODELS JSON: `upscaler submit` refuses what is not served before uploading.
    SERVED_MODELS = "ServedModels"
    #: DEFAULT_MODEL / DEFAULT_SCALE: what a plain `upscaler submit` asks for.
    DEFAULT_MODEL = "DefaultModel"
    DEFAULT_SCALE = "DefaultScale"


# --- job states -------------------------------------------------------------------------
FETCHING, PENDING, SPLIT, RUNNING, MERGING, DONE, FAILED = (
    "FETCHING",
    "PENDING",
    "SPLIT",
    "RUNNING",
    "MERGING",
    "DONE",
    "FAILED",
)
#: A chunk's state between dispatch and its endpoint notification.
DISPATCHED = "DISPATCHED"
FINISHED = (DONE, FAILED)
UNFINISHED = (FETCHING, PENDING, SPLIT, RUNNING, MERGING)


# --- job table row schema ---------------------------------------------------------------
#: Partition key (S) and sort key (S) of the job table.
PARTITION_KEY, SORT_KEY = "job_id", "item"
#: The sort key of the job row; chunk rows use `chunk_item(index)`.
JOB_ITEM = "JOB"
# The job row holds, besides the keys, `status`, `created_at` and `updated_at`:
#   owner:   object (`object_id` of the one upload the job belongs to; set once)
#   split:   source, source_version (a versioned upload's version id), name, source_bytes,
#            model, scale, codec, crf, preset, deinterlace (resolved: off|frame|field|ivtc),
#            square_pixels, chunk_count, media, output_frames (frames the output must hold)
#   fetch:   source_url
#   collect: done (a number set of finished chunk indices), merge_enqueued
#   merge:   output, output_bytes, total_seconds, merge_seconds
#   failure: reason
# A chunk row (sort key `chunk_item(index)`): index, attempt, status, frame_count,
# output_frames (`Picture.frames_out`: 2n for field, n - n // 5 for ivtc), start_s,
# duration_s, then dispatch's inference_id/output_location/failure_location/request and
# collect's frames/seconds/done_attempt/last_error.


def chunk_item(index: int) -> str:
    return f"CHUNK#{index:05d}"


def job_key(job_id: str) -> dict[str, str]:
    """The table key of a job row."""
    return {PARTITION_KEY: job_id, SORT_KEY: JOB_ITEM}


def fetching_row(job_id: str, url: str, at: str) -> dict[str, Any]:
    """The job row `upscaler submit URL` writes before it invokes fetch (ISO time `at`)."""
    return {
        **job_key(job_id),
        "status": FETCHING,
        "source_url": url,
        "created_at": at,
        "updated_at": at,
    }


def from_dynamo(value: Any) -> Any:
    """DynamoDB values -> JSON-friendly ones (Decimals to int/float, sets to sorted lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(from_dynamo(v) for v in value)
    return value


def describe_row(row: dict[str, Any]) -> dict[str, Any]:
    """A job row as `upscaler status` shows it: plain JSON, `done` counted as `chunks_done`."""
    data = from_dynamo(row)
    data["chunks_done"] = len(data.pop("done", None) or [])
    data.pop(SORT_KEY, None)
    return data
