"""The bad-input corpus through every entry point: the CLI (in-process and as a real
subprocess), the image path, the SageMaker inference handler and the split Lambda.

Refused inputs give one clear line and the documented exit code (InputError 2,
LimitExceededError 3, MediaError 6) and leave nothing behind; valid-but-odd inputs must come
out right (frame count kept, size multiplied by the scale).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.reliability.conftest import leftovers
from tests.reliability.corpus import Case, png_claiming
from upscaler import cli
from upscaler.media.limits import Limits
from upscaler.media.probe import probe

NAMES = [
    "empty", "random", "zeros", "truncated-10", "truncated-50", "truncated-90",
    "truncated-ts-10", "truncated-ts-50", "truncated-ts-90", "corrupt-middle", "text",
    "png-as-mp4", "audio-only", "zero-frames", "hls", "hls-m3u8", "ffconcat", "ffconcat-txt",
    "huge-declared", "over-pixel-limit", "long-claim", "fast-claim", "unparsable-declared",
    "lying-header", "resolution-change", "1x1", "odd-444", "odd-420", "2x2-h264",
    "name:with space é.mp4", "name:ünïcödé 视频.mp4", "name:-leading-dash.mp4",
]  # fmt: skip
REFUSAL_CODES = (2, 3, 6)
SECONDS = 30  # per case: every one of them is small


class Hang(Exception):
    pass


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when a case runs past `seconds`."""

    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """`upscaler ARGV` in-process: (exit code, stderr)."""
    with deadline(SECONDS):
        code = cli.main(argv)
    return code, capsys.readouterr().err


def check_output(case: Case, out: Path, scale: int = 2) -> None:
    info = probe(out, Limits(max_input_pixels=1 << 40))
    assert info.video.frame_count == case.frames
    assert (info.video.width, info.video.height) == (case.size[0] * scale, case.size[1] * scale)


def check_refusal(code: int, err: str, case: Case, out: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("upscaler: error: "), err
    assert "Traceback" not in err
    assert case.words in lines[0]
    if case.exit_code > 0:
        assert code == case.exit_code, lines[0]
    else:
        assert code in REFUSAL_CODES, lines[0]
    assert not out.exists()


def test_corpus_is_complete(corpus):
    assert sorted(corpus) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_cli_in_process(corpus, name, tmp_path, capsys, monkeypatch):
    case = corpus[name]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to see scratch leftovers
    out = tmp_path / "out.mp4"
    started = time.monotonic()
    code, err = run_main(["upscale", "--model", "bicubic", "-o", str(out), "--", str(case.path)],
                         capsys)  # fmt: skip
    assert time.monotonic() - started < SECONDS
    if case.valid or (case.exit_code < 0 and code == 0):
        assert code == 0, err
        if case.valid:
            check_output(case, out)
        else:  # a damaged-but-playable file: whatever probe counts must come out
            assert probe(out).video.frame_count == probe(case.path).video.frame_count
    else:
        check_refusal(code, err, case, out)
    assert leftovers(tmp_path, case.path.parent) == []


@pytest.mark.parametrize("name", ["1x1", "odd-444", "odd-420"])
@pytest.mark.parametrize("scale", [3, 4])
def test_odd_sizes_at_every_scale(corpus, name, scale, tmp_path, capsys):
    """x3 of an odd 4:2:0 frame is odd again: encoded in 4:4:4 rather than failing."""
    case, out = corpus[name], tmp_path / "out.mkv"
    code, err = run_main(["upscale", "--model", "bicubic", "--scale", str(scale), "-o",
                          str(out), str(case.path)], capsys)  # fmt: skip
    assert code == 0, err
    check_output(case, out, scale)


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upscaler.cli", *args], capture_output=True,
                          text=True, timeout=60, **kwargs)  # fmt: skip


@pytest.mark.parametrize("name", ["random", "hls", "huge-declared", "resolution-change"])
def test_cli_subprocess_refusals(corpus, name, tmp_path):
    """The real process: exit code, one line on stderr, nothing written."""
    case, out = corpus[name], tmp_path / "out.mp4"
    proc = run_cli("upscale", str(case.path), "-o", str(out), "--model", "bicubic")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode in REFUSAL_CODES and len(lines) == 1, proc.stderr
    if case.exit_code > 0:
        assert proc.returncode == case.exit_code
    assert not out.exists() and leftovers(tmp_path) == []


def test_cli_subprocess_odd_names(corpus, tmp_path):
    """A leading dash is an option to argparse: refused with usage unless after `--` or
    written as ./-name; unicode and spaces in both input and output names just work."""
    case = corpus["name:-leading-dash.mp4"]
    proc = run_cli("upscale", case.path.name, "-o", "x.mp4", cwd=case.path.parent)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    out = tmp_path / "-out ünï 视频.mp4"
    proc = run_cli("upscale", "--model", "bicubic", "--json", "-o", str(out), "--",
                   f"./{case.path.name}", cwd=case.path.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames"] == 12
    check_output(case, out)


# ---- the image path --------------------------------------------------------------------


def _image_corpus(d: Path, video: Path) -> dict[str, tuple[Path, int]]:
    from PIL import Image

    png = d / "good.png"
    Image.new("RGB", (7, 5), (10, 200, 30)).save(png)
    data = png.read_bytes()
    cases = {
        "empty": (d / "empty.png", 2),
        "random": (d / "random.png", 2),
        "truncated": (d / "truncated.png", 2),
        "video-as-png": (d / "video.png", 2),
        "bomb": (png_claiming(d / "bomb.png", 30000, 30000), 3),  # PIL's bomb guard
        "over-limit": (png_claiming(d / "big.png", 5000, 5000), 3),  # our pixel limit
        "odd-7x5": (png, 0),
        "1x1": (d / "one.png", 0),
    }
    cases["empty"][0].write_bytes(b"")
    cases["random"][0].write_bytes(bytes(range(256)) * 10)
    cases["truncated"][0].write_bytes(data[: len(data) // 2])
    cases["video-as-png"][0].write_bytes(video.read_bytes())
    Image.new("RGB", (1, 1), (1, 2, 3)).save(cases["1x1"][0])
    return cases


@pytest.mark.parametrize(
    "name",
    ["empty", "random", "truncated", "video-as-png", "bomb", "over-limit", "odd-7x5", "1x1"],
)
def test_image_path(corpus, name, tmp_path, capsys):
    from PIL import Image

    src, expected = _image_corpus(tmp_path, corpus["2x2-h264"].path)[name]
    out = tmp_path / "out" / "up.png"
    out.parent.mkdir()
    code, err = run_main(["upscale", "--model", "bicubic", "-o", str(out), str(src)], capsys)
    assert code == expected, err
    if expected:
        assert len(err.strip().splitlines()) == 1 and not out.exists(), err
    else:
        with Image.open(src) as before, Image.open(out) as after:
            assert after.size == (before.width * 2, before.height * 2)
    assert leftovers(out.parent) == []


# ---- the SageMaker inference handler (predict path, moto S3) -----------------------------


@pytest.fixture
def work_bucket(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ALLOWED_BUCKETS", "work")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="work")
        yield s3


@pytest.mark.parametrize("name", NAMES)
def test_inference_handler(corpus, name, work_bucket, bicubic_endpoint_models):
    """A bad chunk is a 4xx BadRequest with one line (not retried as a server fault); a good
    one is upscaled; nothing appears under the output key on failure."""
    from lambdas.pipeline_local import load_inference

    inference = load_inference()
    case = corpus[name]
    work_bucket.upload_file(str(case.path), "work", "in/chunk")
    spec = {"chunk": "s3://work/in/chunk", "output": "s3://work/up/chunk.mp4"}
    try:
        with deadline(SECONDS):
            data = inference.input_fn(json.dumps(spec).encode(), "application/json")
            result = inference.predict_fn(data, bicubic_endpoint_models)
    except inference.BadRequest as exc:
        assert not case.valid, exc
        assert 400 <= exc.status_code < 500 and "\n" not in str(exc)
        assert str(exc).startswith("cannot upscale the chunk: s3://work/in/chunk")
        listed = work_bucket.list_objects_v2(Bucket="work", Prefix="up/")
        assert listed["KeyCount"] == 0
        return
    # Accepted: the endpoint upscales whatever decodes (probe-level checks are split's job).
    assert result["frames"] > 0
    if case.valid:
        assert result["frames"] == case.frames
        assert (result["width"], result["height"]) == (case.size[0] * 2, case.size[1] * 2)


# ---- the split Lambda (moto pipeline) -----------------------------------------------------


SPLIT_VALID_RUN = {"odd-420", "1x1", "name:ünïcödé 视频.mp4"}  # run these to DONE


@pytest.mark.parametrize("name", NAMES)
def test_split_handler(corpus, name, pipeline, bicubic_endpoint_models, tmp_path):
    from lambdas import aws, jobs

    case = corpus[name]
    key = f"uploads/bad-{NAMES.index(name)}/{case.path.name}"
    aws.client("s3").upload_file(str(case.path), pipeline.env["INPUT_BUCKET"], key)
    with deadline(SECONDS):
        endpoint = pipeline.endpoint(bicubic_endpoint_models)
        from lambdas import split

        pipeline.drain_uploads(split.handler)
    job = jobs.describe(f"bad-{NAMES.index(name)}")
    work = aws.list_sizes(pipeline.env["WORK_BUCKET"], "jobs/")
    if job["status"] == jobs.FAILED:
        assert not case.valid, job["reason"]
        reason = job["reason"]
        assert reason and "\n" not in reason and "/tmp" not in reason and "Traceback" not in reason
        assert case.words in reason
        assert work == {}  # no chunk left behind
        return
    assert job["status"] == jobs.RUNNING, job
    if case.valid:
        assert job["media"]["frame_count"] == case.frames
    if name in SPLIT_VALID_RUN:
        with deadline(60):
            pipeline.run(endpoint)
        job = jobs.describe(job["job_id"])
        assert job["status"] == jobs.DONE, job
        out = tmp_path / "out.mp4"
        aws.download(job["output"], out)
        check_output(case, out)
