"""split: an upload lands in the input bucket -> keyframe chunks in the work bucket, the job
and chunk rows, and one work message per chunk. Bad input ends the job FAILED, not retried."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import aws, config, jobs, specs
from lambdas.messages import work_item
from upscaler.cloud_contract import (
    FETCHING,
    PENDING,
    chunk_key,
    metadata_fields,
    object_id,
    object_job_id,
    prefix_job_id,
    safe_stem,
)
from upscaler.errors import InputError, LimitExceededError, UpscalerError
from upscaler.job import JobSpec, Prepared, media_facts, prepare
from upscaler.job.budget import check_chunk_time, check_merge_scratch
from upscaler.media.limits import Limits

logger = Logger()


def job_for(bucket: str, key: str, version: str) -> str:
    """The job of one uploaded object (`version`: its version id, or ETag when unversioned).

    `uploads/<job_id>/<file>` names its job while that job is free or already this object's
    (the id `submit` and fetch returned); any other object, e.g. a second file under the same
    prefix, gets a job of its own, a hash of the object: one object, one job.
    """
    source, obj = aws.s3_uri(bucket, key), object_id(bucket, key, version)
    named = prefix_job_id(key)
    if named and jobs.own(named, source, obj):
        jobs.set_status(named, PENDING, (FETCHING,))  # fetch's upload has landed
        return named
    derived = object_job_id(bucket, key, version)
    if not jobs.own(derived, source, obj):
        raise RuntimeError(f"job {derived} belongs to another object than {obj}")
    return derived


def job_settings(metadata: dict[str, str]) -> JobSpec:
    """Model, scale, picture and encoder settings: object metadata (x-amz-meta-*) over env
    defaults. A model/scale the endpoint does not serve is refused here, before any chunk."""
    return specs.job_spec(metadata_fields(metadata))


def _check_size(size: int, limits: Limits) -> None:
    """Refuse an object over the byte limit before downloading any of it."""
    if size > limits.max_input_bytes:
        raise LimitExceededError(
            f"the input is {size} bytes, over the limit of {limits.max_input_bytes}"
        )


def _check_disk(tmp: Path, size: int) -> None:
    free = shutil.disk_usage(tmp).free
    if free < 2 * size + (64 << 20):
        raise InputError(
            f"the input ({size} bytes) needs about twice its size of scratch space; "
            f"the split function has {free} bytes free (raise its ephemeral storage)"
        )


def _check_endpoint_time(prepared: Prepared, fields: dict[str, Any]) -> None:
    """Refuse chunks the endpoint could not finish within the invocation timeout."""
    instance = config.instance_type()
    if instance is not None:
        model, scale = fields["model"], fields["scale"]
        timeout = config.invocation_timeout_s()
        check_chunk_time(prepared.chunks, prepared.info, model, scale, instance, timeout)


def split_object(bucket: str, key: str, etag: str, version_id: str | None = None) -> str | None:
    """Split one uploaded object into a running job; return its job id (None if skipped).

    With a version id (a versioned bucket) split and merge read that very version, so a key
    overwritten meanwhile does not swap the video under its job.
    """
    source = aws.s3_uri(bucket, key)
    logger.append_keys(source=source)
    head = aws.head(bucket, key, version_id)
    if head is None:
        logger.warning("object is gone; nothing to split")
        return None
    job_id = job_for(bucket, key, version_id or etag)
    logger.append_keys(job_id=job_id)
    fields: dict[str, Any] = {
        "source": source,
        "name": safe_stem(key),
        "source_bytes": head["ContentLength"],
    }
    if version_id:
        fields["source_version"] = version_id
    try:
        spec = job_settings(head.get("Metadata", {}))
        fields.update(spec.to_dict())
    except UpscalerError as exc:
        jobs.fail(job_id, str(exc), **fields)
        return job_id
    if not jobs.claim(job_id, fields):
        logger.info("duplicate event: the job is already past its split")
        return job_id
    with tempfile.TemporaryDirectory(prefix="split-") as tmp:
        local = Path(tmp) / f"source{PurePosixPath(key).suffix.lower()[:8]}"
        try:
            limits = Limits.from_env()
            _check_size(head["ContentLength"], limits)
            _check_disk(Path(tmp), head["ContentLength"])
            check_merge_scratch(head["ContentLength"], fields["scale"], specs.merge_scratch_mib())
            aws.download(source, local, version_id)
            prepared = prepare(
                local, fields["scale"], config.chunk_seconds(), Path(tmp) / "chunks", limits
            )
            _check_endpoint_time(prepared, fields)
            picture = spec.picture(prepared.info.video)  # decided once, for every chunk
        except UpscalerError as exc:
            reason = str(exc).replace(str(local), fields["name"] + local.suffix)
            logger.info("input refused", extra={"reason": reason})
            jobs.fail(job_id, reason)
            return job_id
        work = config.work_bucket()
        for chunk, path in zip(prepared.chunks, prepared.paths, strict=True):
            aws.upload(path, aws.s3_uri(work, chunk_key(job_id, chunk.index)))
    chunks, info = prepared.chunks, prepared.info
    outputs = [picture.frames_out(chunk.frame_count) for chunk in chunks]
    for chunk, output_frames in zip(chunks, outputs, strict=True):
        chunk_fields = {
            "frame_count": chunk.frame_count,
            "output_frames": output_frames,
            "start_s": chunk.start_s,
            "duration_s": chunk.duration_s,
        }
        jobs.put_chunk(job_id, chunk.index, chunk_fields)
    if picture.deinterlace != spec.deinterlace:
        logger.info("interlace decided", extra={"deinterlace": picture.deinterlace})
    fields["deinterlace"] = picture.deinterlace
    facts = {
        "chunk_count": len(chunks),
        "media": media_facts(info),
        "deinterlace": picture.deinterlace,
        "output_frames": sum(outputs),
    }
    if not jobs.set_status(job_id, jobs.SPLIT, (jobs.PENDING, jobs.SPLIT), **facts):
        return job_id
    job = {"job_id": job_id, **fields, "chunk_count": len(chunks)}
    messages = [work_item(job, c.index, 1, work).to_dict() for c in chunks]
    aws.send_all(config.work_queue_url(), messages)
    jobs.set_status(job_id, jobs.RUNNING, (jobs.SPLIT,))
    logger.info("split", extra={"chunks": len(chunks), "frames": info.video.frame_count})
    return job_id


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, list[str]]:
    """S3 ObjectCreated event -> one job per object (keys arrive URL-encoded)."""
    job_ids = []
    for record in event.records:
        obj = record.s3.get_object
        key = unquote_plus(obj.key)
        job_id = split_object(record.s3.bucket.name, key, obj.etag, obj.version_id)
        if job_id:
            job_ids.append(job_id)
    return {"job_ids": job_ids}
