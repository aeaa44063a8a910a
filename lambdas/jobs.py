"""The job table (keys, states and row schema: `upscaler.cloud_contract`). Every write is
conditional so duplicate, retried and out-of-order deliveries change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from lambdas import aws, config
from upscaler.cloud_contract import (
    DISPATCHED,
    DONE,
    FAILED,
    FETCHING,
    JOB_ITEM,
    MERGING,
    PARTITION_KEY,
    PENDING,
    RUNNING,
    SORT_KEY,
    SPLIT,
    UNFINISHED,
    chunk_item,
    describe_row,
    job_key,
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_dynamo(value: Any) -> Any:
    """Python values -> DynamoDB-safe ones (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def _table() -> Any:
    return aws.table(config.job_table())


def _update(
    item: str,
    job_id: str,
    fields: dict[str, Any],
    condition: str,
    *,
    sets: tuple[str, ...] = (),
    add: str = "",
    remove: str = "",
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    return_new: bool = False,
) -> dict[str, Any] | None:
    """SET `fields` (plus raw `sets`, ADD, REMOVE) on one item if `condition` holds.

    Returns the updated attributes (when `return_new`) or {}; None when the condition fails.
    """
    attr_names = {"#s": "status", **{f"#f{i}": k for i, k in enumerate(fields)}, **(names or {})}
    attr_values = {f":f{i}": to_dynamo(v) for i, v in enumerate(fields.values())}
    attr_values.update({k: to_dynamo(v) for k, v in (values or {}).items()})
    assignments = [f"#f{i} = :f{i}" for i in range(len(fields))] + list(sets)
    expr = ("SET " + ", ".join(assignments)) if assignments else ""
    expr += f" ADD {add}" if add else ""
    expr += f" REMOVE {remove}" if remove else ""
    used = f"{expr} {condition}"  # DynamoDB refuses unused placeholders
    kwargs: dict[str, Any] = {
        "Key": {PARTITION_KEY: job_id, SORT_KEY: item},
        "UpdateExpression": expr.strip(),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {k: v for k, v in attr_names.items() if k in used},
        "ReturnValues": "ALL_NEW" if return_new else "NONE",
    }
    attr_values = {k: v for k, v in attr_values.items() if k in used}
    if attr_values:
        kwargs["ExpressionAttributeValues"] = attr_values
    try:
        return _table().update_item(**kwargs).get("Attributes", {})
    except ClientError as exc:
        if aws.is_condition_failure(exc):
            return None
        raise


def get_job(job_id: str) -> dict[str, Any] | None:
    return _table().get_item(Key=job_key(job_id), ConsistentRead=True).get("Item")


def get_chunk(job_id: str, index: int) -> dict[str, Any] | None:
    key = {PARTITION_KEY: job_id, SORT_KEY: chunk_item(index)}
    return _table().get_item(Key=key, ConsistentRead=True).get("Item")


def begin_fetch(job_id: str, url: str) -> bool:
    """Start (or restart) the job's download: the row `submit` wrote, or a new one.

    False for a job whose download already reached its upload, or is past FETCHING (a
    redelivered asynchronous invocation must not upload a second object).
    """
    return (
        _update(
            JOB_ITEM,
            job_id,
            {"status": FETCHING, "source_url": url, "updated_at": now()},
            "attribute_not_exists(job_id) OR (#s = :fetching AND attribute_not_exists(#src))",
            sets=("#c = if_not_exists(#c, :now)",),
            names={"#c": "created_at", "#src": "source"},
            values={":fetching": FETCHING, ":now": now()},
        )
        is not None
    )


def own(job_id: str, source: str, obj: str) -> bool:
    """Make `obj` (an `object_id`) the one upload of job `job_id`, creating the row if needed.

    False when the job belongs to another object, or fetch announced another `source` for it:
    never two files in one job. True again for the same object (duplicate events).
    """
    condition = (
        "attribute_not_exists(job_id) OR ((attribute_not_exists(#o) OR #o = :obj) "
        "AND (attribute_not_exists(#src) OR #src = :src))"
    )
    sets = (
        "#o = :obj",
        "#src = :src",
        "#s = if_not_exists(#s, :pending)",
        "#c = if_not_exists(#c, :now)",
    )
    names = {"#o": "object", "#src": "source", "#c": "created_at"}
    values = {":obj": obj, ":src": source, ":pending": PENDING, ":now": now()}
    fields = {"updated_at": now()}
    return (
        _update(JOB_ITEM, job_id, fields, condition, sets=sets, names=names, values=values)
        is not None
    )


def claim(job_id: str, fields: dict[str, Any]) -> bool:
    """Start (or resume an interrupted) split; False for a job that is already past it."""
    return (
        _update(
            JOB_ITEM,
            job_id,
            {**fields, "updated_at": now()},
            "attribute_not_exists(job_id) OR #s IN (:pending, :split)",
            sets=("#s = if_not_exists(#s, :pending)", "#c = if_not_exists(#c, :now)"),
            names={"#c": "created_at"},
            values={":pending": PENDING, ":split": SPLIT, ":now": now()},
        )
        is not None
    )


def put_chunk(job_id: str, index: int, fields: dict[str, Any]) -> None:
    """Create a chunk row (attempt 1) unless a previous split attempt already did."""
    item = {PARTITION_KEY: job_id, SORT_KEY: chunk_item(index), "index": index, "attempt": 1}
    item.update(status=PENDING, **fields)
    try:
        _table().put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(job_id)")
    except ClientError as exc:
        if not aws.is_condition_failure(exc):
            raise


def set_status(job_id: str, status: str, expected: tuple[str, ...], **fields: Any) -> bool:
    """Move the job to `status` if it is in one of `expected`."""
    placeholders = {f":e{i}": s for i, s in enumerate(expected)}
    condition = f"#s IN ({', '.join(placeholders)})"
    fields = {"status": status, "updated_at": now(), **fields}
    return _update(JOB_ITEM, job_id, fields, condition, values=placeholders) is not None


def stale_jobs(updated_before: str) -> list[dict[str, Any]]:
    """Unfinished job rows whose last update is older than `updated_before` (ISO time)."""
    from boto3.dynamodb.conditions import Attr

    condition = (
        Attr(SORT_KEY).eq(JOB_ITEM)
        & Attr("status").is_in(list(UNFINISHED))
        & Attr("updated_at").lt(updated_before)
    )
    rows, kwargs = [], {"FilterExpression": condition, "ConsistentRead": True}
    while True:
        page = _table().scan(**kwargs)
        rows.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def fail_if_unchanged(job_id: str, reason: str, updated_at: str) -> bool:
    """Mark an unfinished job FAILED only if nothing touched it since `updated_at` (so a job
    that made progress after the sweeper read it is left alone)."""
    fields = {"status": FAILED, "reason": reason[:1000], "updated_at": now()}
    condition = "#u = :seen AND NOT #s IN (:done, :failed)"
    values = {":seen": updated_at, ":done": DONE, ":failed": FAILED}
    return (
        _update(JOB_ITEM, job_id, fields, condition, names={"#u": "updated_at"}, values=values)
        is not None
    )


def fail(job_id: str, reason: str, **fields: Any) -> bool:
    """Mark the job FAILED with a reason (first failure wins; a DONE job stays DONE)."""
    fields = {"status": FAILED, "reason": reason[:1000], "updated_at": now(), **fields}
    condition = "attribute_not_exists(job_id) OR NOT #s IN (:done, :failed)"
    values = {":done": DONE, ":failed": FAILED}
    return _update(JOB_ITEM, job_id, fields, condition, values=values) is not None


def chunk_dispatched(job_id: str, index: int, attempt: int, fields: dict[str, Any]) -> bool:
    """Record the invocation of `attempt`; False when the chunk is done or moved on."""
    fields = {"status": DISPATCHED, "dispatched_at": now(), **fields}
    condition = "#s <> :done AND attempt = :a"
    values = {":done": DONE, ":a": attempt}
    return _update(chunk_item(index), job_id, fields, condition, values=values) is not None


def chunk_done(job_id: str, index: int, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Mark a chunk DONE and add it to the job's done set (a set: adding twice counts once).

    Returns the job row after the update, or None when the job is no longer running.
    """
    fields = {"status": DONE, "done_at": now(), **fields}
    _update(chunk_item(index), job_id, fields, "attribute_exists(job_id)")
    return _update(
        JOB_ITEM,
        job_id,
        {"updated_at": now()},
        "#s IN (:split, :running)",
        add="#d :i",
        names={"#d": "done"},
        values={":split": SPLIT, ":running": RUNNING, ":i": {index}},
        return_new=True,
    )


def chunk_failed(job_id: str, index: int, attempt: int, reason: str) -> bool:
    """Count a failed attempt once; False for a duplicate or stale failure report."""
    fields = {"attempt": attempt + 1, "last_error": reason[:1000], "status": PENDING}
    condition = "#s <> :done AND attempt = :a"
    values = {":done": DONE, ":a": attempt}
    return _update(chunk_item(index), job_id, fields, condition, values=values) is not None


def claim_merge(job_id: str) -> bool:
    """Set `merge_enqueued` once; only the caller that gets True sends the merge message."""
    return (
        _update(
            JOB_ITEM,
            job_id,
            {"merge_enqueued": True, "status": MERGING, "updated_at": now()},
            "attribute_not_exists(merge_enqueued) AND #s IN (:split, :running)",
            values={":split": SPLIT, ":running": RUNNING},
        )
        is not None
    )


def release_merge(job_id: str) -> None:
    """Undo `claim_merge` after the merge message could not be sent (so a retry can)."""
    _update(
        JOB_ITEM,
        job_id,
        {"status": RUNNING},
        "#s = :merging",
        remove="merge_enqueued",
        values={":merging": MERGING},
    )


def describe(job_id: str) -> dict[str, Any] | None:
    """The job row as JSON-friendly data, with `chunks_done` counted (for `upscaler status`)."""
    job = get_job(job_id)
    return None if job is None else describe_row(job)
