"""sweep: a scheduled Lambda that fails jobs which stopped making progress.

A split whose retries are exhausted, or a chunk whose endpoint notification was lost, would
otherwise leave its job PENDING/RUNNING forever. Every write to a job row refreshes
`updated_at`, so a job untouched for STALE_AFTER_S (default 2 h, well above the slowest
chunk: 15 min timeouts, retries and a cold endpoint) is marked FAILED with a reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import config, jobs
from upscaler.cloud_contract import Env

logger = Logger()


def sweep(now: datetime | None = None) -> list[str]:
    """Fail every stale unfinished job; return their ids."""
    stale_after = config.env_float(Env.STALE_AFTER_S, 7200.0)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=stale_after)
    failed = []
    for row in jobs.stale_jobs(cutoff.isoformat(timespec="milliseconds")):
        reason = (
            f"timed out: no progress for {stale_after / 3600:.1f} h while {row['status']} "
            f"(last update {row['updated_at']})"
        )
        if jobs.fail_if_unchanged(row["job_id"], reason, row["updated_at"]):
            failed.append(row["job_id"])
    return failed


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    failed = sweep()
    if failed:
        logger.warning("failed stale jobs", extra={"job_ids": failed})
    return {"failed": failed}
