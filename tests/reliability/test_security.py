"""Security and limits: what the SSRF tests in tests/aws/test_ssrf.py did not cover yet
(DNS rebinding between check and connect, redirects to internal forms, more IPv6 and numeric
spellings), S3 keys that try to leave the job prefix, and every UPSCALER_MAX_* limit
refusing *before* heavy work starts."""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from fractions import Fraction
from pathlib import Path

import pytest

from lambdas import ssrf
from lambdas.merge import output_key
from lambdas.ssrf import UnsafeURLError, UrlGuard, open_url
from tests.clips import ClipSpec, make_clip
from upscaler.cloud_contract import (
    JOB_ID,
    chunk_key,
    object_job_id,
    prefix_job_id,
    request_key,
    safe_stem,
    upscaled_key,
)
from upscaler.engine import video
from upscaler.engine.runner import Upscaler
from upscaler.errors import InputError, LimitExceededError
from upscaler.job import steps as job_steps
from upscaler.media import chunks as chunks_module

# ---- SSRF -----------------------------------------------------------------------------


class Rebinder:
    """DNS that answers a public address first and a private one afterwards (TTL 0)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return ["93.184.216.34"] if self.calls == 1 else ["127.0.0.1"]


def test_dns_rebinding_cannot_swap_the_address_between_check_and_connect(monkeypatch):
    """The connection goes to the address that was checked: no second lookup happens."""
    resolver = Rebinder()
    connected = []

    def fake_connect(address, timeout=None, source_address=None):
        connected.append(address[0])
        raise OSError("stop here")

    monkeypatch.setattr(socket, "create_connection", fake_connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("second lookup"))
    with pytest.raises(InputError, match="download failed"):
        open_url("http://rebind.example.com/clip.mp4", UrlGuard(resolver=resolver))
    assert connected == ["93.184.216.34"] and resolver.calls == 1


def test_rebinding_name_is_refused_on_its_private_answer():
    resolver = Rebinder()
    guard = UrlGuard(resolver=resolver)
    guard.check("http://rebind.example.com/")  # public the first time
    with pytest.raises(UnsafeURLError, match="loopback"):
        guard.check("http://rebind.example.com/")  # each hop/URL is checked afresh


@pytest.mark.parametrize(
    "location",
    [
        "http://2130706433/",  # decimal loopback
        "http://0x7f.1/",
        "http://017700000001/",  # octal, one part
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]:8080/",
        "http://[::ffff:7f00:1]/",  # IPv4-mapped loopback, hex spelling
        "http://[::127.0.0.1]/",  # deprecated IPv4-compatible form
        "http://[fe80::1%25eth0]/",  # link-local with a zone id
        "http://127.0.0.1./",  # trailing dot
        "http://0/",
        "http://169.254.169.254.nip.io/",  # a name: refused when it resolves privately
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
)
def test_redirects_to_internal_targets_are_refused(location, monkeypatch):
    """A public page redirecting to an internal spelling: the hop is checked like the URL."""
    import http.client

    names = {"public.example.com": ["93.184.216.34"], "169.254.169.254.nip.io": ["169.254.169.254"]}

    class Redirect:
        status, reason = 302, "Found"

        def getheader(self, name, default=None):
            return location if name == "Location" else default

    monkeypatch.setattr(http.client.HTTPConnection, "request", lambda self, *a, **k: None)
    monkeypatch.setattr(http.client.HTTPConnection, "getresponse", lambda self: Redirect())
    guard = UrlGuard(resolver=lambda host, port: names[host])
    with pytest.raises(UnsafeURLError):
        open_url("http://public.example.com/watch", guard)


@pytest.mark.parametrize(
    "url",
    ["http://0X7F000001/", "http://127.000.000.001/", "http://[::ffff:169.254.169.254]/",
     "http://[64:ff9b::169.254.169.254]/", "http://[2002:a9fe:a9fe::]/", "http://10.0.0.1:80@x/"],
)  # fmt: skip
def test_more_numeric_spellings_are_refused(url):
    with pytest.raises(UnsafeURLError):
        UrlGuard(resolver=lambda h, p: ["93.184.216.34"]).check(url)


def test_every_blocked_network_kind_has_a_reason():
    for text in ("0.0.0.0", "100.64.0.1", "192.0.0.1", "198.18.0.1", "::", "ff02::1"):
        assert ssrf.blocked_reason(ipaddress.ip_address(text)), text


# ---- S3 keys never leave the job prefix -------------------------------------------------

NASTY_KEYS = [
    "uploads/../../outputs/victim/x.mp4",
    "uploads/..%2F..%2Fetc/passwd.mp4",
    "uploads/job/../../../x.mp4",
    "uploads/../x.mp4",
    "/absolute/../../x.mp4",
    "uploads/ok-job/..mp4",
    "uploads/ok-job/.hidden.mp4",
    "uploads/ok-job/" + "ü" * 300 + ".mp4",
    "uploads/ok-job/a\nb\x00c.mp4",
    "uploads/ok-job/-rf --no-preserve-root.mp4",
    "uploads/jöb/clip.mp4",
    "uploads/" + "a" * 41 + "/clip.mp4",  # too long for a job id
    "uploads/ok-job/",
]


@pytest.mark.parametrize("key", NASTY_KEYS)
def test_keys_built_from_uploads_stay_under_the_job_prefix(key):
    job_id = prefix_job_id(key) or object_job_id("input", key, "etag")
    assert JOB_ID.match(job_id), job_id
    name = safe_stem(key)
    # no separators, never hidden or "..": a leading dash is harmless (no shell anywhere)
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}", name), name
    job = {"job_id": job_id, "name": name, "scale": 2}
    for built, prefix in (
        (output_key(job), f"outputs/{job_id}/"),
        (chunk_key(job_id, 3), f"jobs/{job_id}/"),
        (upscaled_key(job_id, 3), f"jobs/{job_id}/"),
        (request_key(job_id, 3, 1), f"jobs/{job_id}/"),
    ):
        assert built.startswith(prefix) and posixpath.normpath(built) == built, built
        assert ".." not in built.split("/")


def test_split_of_a_traversal_key_writes_only_under_its_job(pipeline, clip_dir):
    from lambdas import aws, jobs, split
    from lambdas.pipeline_local import CONTEXT
    from tests.aws.test_handlers import s3_event

    clip = make_clip(clip_dir / "traversal.mp4", ClipSpec(frames=8, gop=4, audio=False))
    key = "uploads/../../jobs/victim/chunks/..%2F..%2Fclip.mp4"
    aws.client("s3").upload_file(str(clip), pipeline.env["INPUT_BUCKET"], key)
    [job_id] = split.handler(s3_event(pipeline.env["INPUT_BUCKET"], key), CONTEXT)["job_ids"]
    assert JOB_ID.match(job_id) and job_id != "victim"
    assert jobs.describe(job_id)["status"] == jobs.RUNNING
    written = aws.list_sizes(pipeline.env["WORK_BUCKET"], "")
    assert written and all(k.startswith(f"jobs/{job_id}/chunks/") for k in written), written


# ---- limits refuse before heavy work ------------------------------------------------------


@pytest.fixture(scope="module")
def limits_clip(tmp_path_factory) -> Path:
    """96x64, 12 frames at 25 fps (0.48 s), a keyframe every 4: three chunks at 0.1 s."""
    spec = ClipSpec(frames=12, gop=4, rate=Fraction(25), audio=False)
    return make_clip(tmp_path_factory.mktemp("limits") / "limits.mp4", spec)


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("UPSCALER_MAX_INPUT_BYTES", "1000", "bytes is over the limit of 1000"),
        ("UPSCALER_MAX_DURATION_S", "0.25", "over the limit of 0 s"),
        ("UPSCALER_MAX_INPUT_PIXELS", "6000", "96x64 is over the limit of 6000 pixels"),
        ("UPSCALER_MAX_OUTPUT_PIXELS", "20000", "output 192x128 is over the limit of 20000"),
        ("UPSCALER_MAX_CHUNKS", "2", "3 chunks is over 2"),
        ("UPSCALER_MAX_FPS", "24", "25.0 fps is over 24.0"),
    ],
)
def test_each_limit_refuses_before_any_heavy_work(limits_clip, tmp_path, monkeypatch, variable,
                                                  value, words):  # fmt: skip
    monkeypatch.setenv(variable, value)
    upscaler = Upscaler("bicubic", 2, "cpu")

    def tripwire(*args, **kwargs):
        raise AssertionError("heavy work started before the limit was checked")

    monkeypatch.setattr(upscaler, "upscale", tripwire)
    monkeypatch.setattr(chunks_module, "split_chunks", tripwire)
    monkeypatch.setattr(job_steps, "split_chunks", tripwire)
    out, work = tmp_path / "out.mp4", tmp_path / "work"
    with pytest.raises(LimitExceededError, match=re.escape(words)):
        video.upscale_video(limits_clip, out, upscaler, work_dir=work, chunk_seconds=0.1)
    assert not out.exists()
    assert not (work / "src").exists() and not (work / "up").exists()


def test_limits_have_safe_defaults():
    from upscaler.media.limits import Limits

    d = Limits.from_env()
    assert d.max_input_pixels == 4096 * 2304 and d.max_output_pixels == 7680 * 4320
    assert d.max_duration_s == 4 * 3600 and d.max_fps == 240 and d.max_chunks == 10_000
    assert d.max_input_bytes == 8 * 1024**3


def test_refused_url_never_reaches_the_network(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("connected"))
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::1]:22/"):
        with pytest.raises(UnsafeURLError):
            open_url(url, UrlGuard())
