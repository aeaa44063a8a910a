"""fetch: {"url": ...} -> the video in the input bucket under `uploads/<job_id>/<name>`.

Direct media links are downloaded as they are; other pages go through yt-dlp, which only
finds the media URL (no playlists, progressive http formats) — the bytes always come through
the SSRF guard. Size and duration limits apply before and while downloading.
"""

from __future__ import annotations

import http.client
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import yt_dlp
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import aws, config, jobs, specs
from lambdas.guarded_ytdlp import GuardedYoutubeDL
from lambdas.ssrf import UrlGuard, open_url
from upscaler.cloud_contract import (
    FETCHING,
    JOB_ID,
    METADATA_FIELDS,
    Env,
    safe_stem,
    upload_key,
    upload_metadata,
)
from upscaler.errors import InputError, LimitExceededError, UpscalerError
from upscaler.media.limits import Limits
from upscaler.media.probe import probe
from upscaler.net.download import save_limited

logger = Logger()
#: The guard every download goes through (tests replace it to allow a loopback server).
GUARD = UrlGuard()
MEDIA_TYPES = ("video/", "application/octet-stream", "application/mp4", "binary/octet-stream")
MEDIA_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".flv", ".ogv")
#: One progressive http(s) file with video (and audio when there is such a format).
YTDLP_FORMAT = "/".join(
    f"best[protocol^=http][vcodec!=?none]{extra}" for extra in ("[acodec!=?none]", "")
)


@dataclass(frozen=True)
class FetchRequest:
    """A URL to fetch for a job, and the job spec fields the submission gave (the upload's
    metadata, which split reads)."""

    url: str
    job_id: str
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: dict[str, Any], job_id: str) -> FetchRequest:
        url = event.get("url")
        if not isinstance(url, str) or not url:
            raise InputError('the event needs a "url"')
        fields = {k: event[k] for k in METADATA_FIELDS if event.get(k) not in (None, "")}
        try:  # refuse now what split would refuse after the download
            specs.job_spec(fields)
        except UpscalerError as exc:
            raise InputError(str(exc)) from None
        return cls(url, job_id, fields)


def max_bytes() -> int:
    return config.env_int(Env.FETCH_MAX_BYTES, 2 * 1024**3)


def max_seconds() -> float:
    return config.env_float(Env.FETCH_MAX_SECONDS, 3600.0)


class Progress:
    """Records the bytes downloaded so far in the FETCHING job row (at most every few
    seconds), for `upscaler status --wait`."""

    def __init__(self, job_id: str, every_s: float = 5.0) -> None:
        self.job_id, self.every_s, self.last = job_id, every_s, time.monotonic()

    def __call__(self, size: int, force: bool = False) -> None:
        if force or time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            jobs.set_status(self.job_id, FETCHING, (FETCHING,), fetched_bytes=size)


def save(response: http.client.HTTPResponse, url: str, path: Path, progress: Progress) -> None:
    """Stream a response body to `path` within the size limit (header and bytes counted)."""
    save_limited(response, url, path, max_bytes(), progress)
    progress(path.stat().st_size, force=True)


def _is_media(content_type: str, url: str) -> bool:
    path = urlsplit(url).path.lower()
    return content_type.startswith(MEDIA_TYPES) or path.endswith(MEDIA_SUFFIXES)


def find_media(url: str) -> tuple[str, dict[str, str], str]:
    """Ask yt-dlp for the page's video: (media URL, HTTP headers, title). No download."""
    options = {
        "quiet": True,
        "no_warnings": True,
        "noplaylist": True,
        "playlist_items": "1",
        "format": YTDLP_FORMAT,
        "socket_timeout": 20,
        "cachedir": False,
    }
    try:
        with GuardedYoutubeDL(options, GUARD) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.YoutubeDLError as exc:
        first = str(exc).splitlines()[0].removeprefix("ERROR: ")
        raise InputError(f"{url}: no downloadable video found ({first})") from None
    if info.get("_type") == "playlist":
        entries = list(info.get("entries") or [])
        if not entries:
            raise InputError(f"{url}: no video on that page")
        info = entries[0]
    duration = info.get("duration")
    if duration and duration > max_seconds():
        raise LimitExceededError(f"{url}: {duration:.0f} s is over the limit of {max_seconds()}")
    size = info.get("filesize") or info.get("filesize_approx")
    if size and size > max_bytes():
        raise LimitExceededError(f"{url}: {size} bytes is over the limit of {max_bytes()}")
    if not info.get("url"):
        raise InputError(f"{url}: no single-file video format (streams only)")
    return info["url"], dict(info.get("http_headers") or {}), str(info.get("title") or "video")


def fetch(request: FetchRequest) -> dict[str, Any]:
    """Download the request's URL and upload it for splitting; return where it went."""
    GUARD.check(request.url)
    with tempfile.TemporaryDirectory(prefix="fetch-") as tmp:
        local = Path(tmp) / "download"
        progress = Progress(request.job_id)
        response, final = open_url(request.url, GUARD)
        content_type = (response.getheader("Content-Type") or "").lower()
        if _is_media(content_type, final):
            save(response, final, local, progress)
            name = PurePosixPath(unquote(urlsplit(final).path)).name
        else:
            response.close()
            media_url, headers, title = find_media(final)
            save(*open_url(media_url, GUARD, headers), local, progress)
            name = f"{title}.mp4"
        limits = Limits(max_input_bytes=max_bytes(), max_duration_s=max_seconds())
        try:
            info = probe(local, limits)
        except InputError as exc:
            raise type(exc)(str(exc).replace(str(local), name)) from None
        suffix = PurePosixPath(name).suffix.lower()
        suffix = suffix if suffix in MEDIA_SUFFIXES else ".mp4"
        key = upload_key(request.job_id, f"{safe_stem(name)}{suffix}")
        uri = aws.s3_uri(config.input_bucket(), key)
        # The one object this job will own (split checks it): no other upload can take it.
        if not jobs.set_status(request.job_id, FETCHING, (FETCHING,), source=uri):
            raise InputError("the job is no longer waiting for its download")
        aws.client("s3").upload_file(
            str(local),
            config.input_bucket(),
            key,
            ExtraArgs={"Metadata": upload_metadata(request.fields)},
        )
    logger.info("fetched", extra={"source": uri, "duration_s": info.duration_s})
    return {"job_id": request.job_id, "status": "UPLOADED", "source": uri}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fetch one URL (invoked asynchronously by `upscaler submit URL`, which created the job
    row FETCHING). Every failure ends the job FAILED with a one-line reason; a redelivered
    event for a job that is past FETCHING does nothing."""
    job_id = str(event.get("job_id") or uuid.uuid4().hex[:20])
    if not JOB_ID.match(job_id):
        return {"status": jobs.FAILED, "reason": f"invalid job id {job_id!r}"}
    logger.append_keys(job_id=job_id, url=event.get("url"))
    if not jobs.begin_fetch(job_id, str(event.get("url"))):
        logger.info("the job is past its fetch; event ignored")
        return {"job_id": job_id, "status": (jobs.get_job(job_id) or {}).get("status")}
    try:
        return fetch(FetchRequest.from_event(event, job_id))
    except Exception as exc:  # a fetch that ends any other way would leave the job FETCHING
        expected = isinstance(exc, InputError)
        reason = str(exc) if expected else f"fetch failed: {type(exc).__name__}: {exc}"
        reason = reason.splitlines()[0] if reason else type(exc).__name__
        logger.warning("fetch failed", extra={"reason": reason}, exc_info=not expected)
        jobs.fail(job_id, reason)
        return {"job_id": job_id, "status": jobs.FAILED, "reason": reason}
