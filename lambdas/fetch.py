"""fetch: {"url": ...} -> the video in the input bucket under `uploads/<job_id>/<name>`.

Direct media links are downloaded as they are; other pages go through yt-dlp, which only
finds the media URL (no playlists, progressive http formats) — the bytes always come through
the SSRF guard. Size and duration limits apply before and while downloading.
"""

from __future__ import annotations

import http.client
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import yt_dlp
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import aws, config, jobs
from lambdas.ssrf import UrlGuard, open_url
from upscaler.cloud_contract import JOB_ID, Env, safe_stem, upload_key
from upscaler.errors import InputError, LimitExceededError, UpscalerError
from upscaler.job import JobSpec
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
    url: str
    job_id: str
    model: str | None = None
    scale: int | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> FetchRequest:
        url = event.get("url")
        if not isinstance(url, str) or not url:
            raise InputError('the event needs a "url"')
        job_id = str(event.get("job_id") or uuid.uuid4().hex[:20])
        if not JOB_ID.match(job_id):
            raise InputError(f"invalid job id {job_id!r}")
        model, scale = event.get("model"), event.get("scale")
        try:  # refuse now what split would refuse after the download
            JobSpec.parse({"model": model, "scale": scale}, config.job_defaults())
        except UpscalerError as exc:
            raise InputError(str(exc)) from None
        return cls(url, job_id, model or None, int(scale) if scale else None)


def max_bytes() -> int:
    return config.env_int(Env.FETCH_MAX_BYTES, 2 * 1024**3)


def max_seconds() -> float:
    return config.env_float(Env.FETCH_MAX_SECONDS, 3600.0)


def save(response: http.client.HTTPResponse, url: str, path: Path) -> None:
    """Stream a response body to `path` within the size limit (header and bytes counted)."""
    save_limited(response, url, path, max_bytes())


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
        with yt_dlp.YoutubeDL(options) as ydl:
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
        response, final = open_url(request.url, GUARD)
        content_type = (response.getheader("Content-Type") or "").lower()
        if _is_media(content_type, final):
            save(response, final, local)
            name = PurePosixPath(unquote(urlsplit(final).path)).name
        else:
            response.close()
            media_url, headers, title = find_media(final)
            save(*open_url(media_url, GUARD, headers), local)
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
        jobs.claim(request.job_id, {"source_url": request.url})
        metadata = {"model": request.model, "scale": str(request.scale or "")}
        aws.client("s3").upload_file(
            str(local),
            config.input_bucket(),
            key,
            ExtraArgs={"Metadata": {k: v for k, v in metadata.items() if v}},
        )
    logger.info("fetched", extra={"source": uri, "duration_s": info.duration_s})
    return {"job_id": request.job_id, "status": jobs.PENDING, "source": uri}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fetch one URL. A refused or unusable URL ends as a FAILED job with the reason."""
    try:
        request = FetchRequest.from_event(event)
    except InputError as exc:
        return {"status": jobs.FAILED, "reason": str(exc)}
    logger.append_keys(job_id=request.job_id, url=request.url)
    try:
        return fetch(request)
    except InputError as exc:
        reason = str(exc)
        logger.warning("fetch refused", extra={"reason": reason})
        jobs.fail(request.job_id, reason, source_url=request.url)
        return {"job_id": request.job_id, "status": jobs.FAILED, "reason": reason}
