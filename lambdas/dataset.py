"""dataset: a video under `training/raw/` in the work bucket -> patch shards for training.

S3 sends an ObjectCreated notification for `training/raw/<file>` to the dataset queue; each
SQS message (an S3 event, possibly with several records) is one item of a Powertools batch.
The core's `build_dataset` picks sharp frames per scene, drops near-duplicates and cuts HR
patches; the result goes to

    training/shards/<name>/<build_id>/shard-00000.npy ...   (uploaded first)
    training/shards/<name>/manifest.json                      (written last: the commit)

so a reader (the training job's channel is `training/shards/`) only ever sees a complete set:
the manifest names the shards of exactly one build. A bad source (unreadable, audio-only, no
usable frames) fails before anything is uploaded, is logged with its reason and reported as a
batch item failure (retried, then kept in the DLQ, whose alarm fires); the shards and manifest
of an earlier build of the same name stay as they were. After a commit, the previous build's
shards are deleted.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import aws, config
from upscaler.cloud_contract import Env
from upscaler.dataset.build import BuildSettings, build_dataset
from upscaler.dataset.shards import MANIFEST
from upscaler.errors import InputError

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)

RAW_PREFIX = "training/raw/"
SHARDS_PREFIX = "training/shards/"


def dataset_name(key: str) -> str:
    """`training/raw/My Clip (1).mp4` -> `My_Clip_1`: a safe directory name for the shards."""
    rel = key[len(RAW_PREFIX) :] if key.startswith(RAW_PREFIX) else key
    stem = str(PurePosixPath(rel).with_suffix(""))
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return name[:100] or "video"


def settings(licence: str = "") -> BuildSettings:
    """Build settings from the environment (DATASET_PATCH, _PER_SCENE, _MAX_PATCHES, _SEED)."""
    return BuildSettings(
        patch=config.env_int(Env.DATASET_PATCH, 96),
        per_scene=config.env_int(Env.DATASET_PER_SCENE, 2),
        max_patches=config.env_int(Env.DATASET_MAX_PATCHES, 20000),
        seed=config.env_int(Env.DATASET_SEED, 0),
        licence=licence,
    )


def s3_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of each record of an S3 event notification (the SQS message body)."""
    try:
        event = json.loads(body)
    except ValueError:
        raise InputError("the message is not an S3 event notification (not JSON)") from None
    if event.get("Event") == "s3:TestEvent":  # sent once when the notification is set up
        return []
    out = []
    for record in event.get("Records") or []:
        s3 = record.get("s3") or {}
        bucket, key = s3.get("bucket", {}).get("name"), s3.get("object", {}).get("key")
        if not bucket or not key:
            raise InputError("an S3 event record without bucket or key")
        out.append((bucket, unquote_plus(key)))  # keys arrive URL-encoded, spaces as '+'
    return out


def _previous_builds(bucket: str, prefix: str, current: str) -> set[str]:
    """Build directories under `prefix` other than `current` (to delete after a commit)."""
    builds = set()
    for key in aws.list_sizes(bucket, prefix):
        rel = key[len(prefix) :]
        if "/" in rel and not rel.startswith(current + "/"):
            builds.add(rel.split("/", 1)[0])
    return builds


def build_from_s3(bucket: str, key: str) -> dict[str, Any] | None:
    """Turn one raw video into committed shards; None when the key is not ours."""
    work = config.work_bucket()
    if bucket != work or not key.startswith(RAW_PREFIX) or key.endswith("/"):
        logger.warning("ignored object", extra={"bucket": bucket, "key": key})
        return None
    name = dataset_name(key)
    prefix = f"{SHARDS_PREFIX}{name}/"
    build_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    logger.append_keys(source=key, dataset=name, build=build_id)
    head = aws.head(bucket, key)
    if head is None:  # deleted since the event: nothing to do
        logger.warning("source is gone")
        return None
    licence = (head.get("Metadata") or {}).get("licence", "")
    with tempfile.TemporaryDirectory(prefix="dataset-") as tmp:
        local = Path(tmp) / (PurePosixPath(key).name or "source")
        aws.download(aws.s3_uri(bucket, key), local)
        out = Path(tmp) / "out"
        try:
            manifest = build_dataset([str(local)], out, settings(licence), shard_prefix=build_id)
        except InputError as exc:  # name the object, not the scratch file
            raise type(exc)(str(exc).replace(str(local), aws.s3_uri(bucket, key))) from None
        manifest.pop("output", None)
        manifest["source_uri"] = aws.s3_uri(bucket, key)
        manifest["build_id"] = build_id
        old = _previous_builds(work, prefix, build_id)
        try:
            for shard in manifest["shards"]:
                aws.upload(
                    out / shard["file"],
                    aws.s3_uri(work, prefix + shard["file"]),
                    "application/octet-stream",
                )
            aws.put_json(aws.s3_uri(work, prefix + MANIFEST), manifest)  # the commit
        except Exception:
            aws.delete_prefix(work, f"{prefix}{build_id}/")  # leave no orphan shards behind
            raise
    for previous in sorted(old):
        aws.delete_prefix(work, f"{prefix}{previous}/")
    logger.info(
        "dataset built",
        extra={
            "patches": manifest["count"],
            "shards": len(manifest["shards"]),
            "replaced": sorted(old),
        },
    )
    return {"dataset": prefix, "patches": manifest["count"], "build_id": build_id}


def record_handler(record: SQSRecord) -> None:
    for bucket, key in s3_objects(record.body):
        try:
            build_from_s3(bucket, key)
        except InputError as exc:
            # Permanent for this source: logged with the reason, then reported as a failed item
            # (retried up to maxReceiveCount, then parked in the alarmed DLQ).
            logger.error("dataset build failed", extra={"key": key, "reason": str(exc)})
            raise


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
