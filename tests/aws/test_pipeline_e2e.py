"""End to end on moto, built from the synthesized stack: upload -> S3 notification -> split ->
dispatch -> the endpoint serving the published model.tar.gz -> SNS -> collect -> merge -> the
output bucket. Each handler sees exactly its function's environment from the template."""

from __future__ import annotations

import json
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from lambdas import aws, jobs
from lambdas.pipeline_local import endpoint_models, run_local
from stacks.synth import cached
from tests.aws.conftest import e2e_model, keys, upload
from tests.clips import ClipSpec, frame_times_of, make_clip, packets
from upscaler.cli import main as cli
from upscaler.media.probe import probe
from upscaler.models.checkpoint import save_checkpoint
from upscaler.models.registry import get_spec


@pytest.fixture(scope="module")
def e2e_clip(clip_dir) -> Path:
    """64x48 with audio, 40 frames, a keyframe every 8: five chunks of 0.25 s."""
    spec = ClipSpec(width=64, height=48, frames=40, gop=8, rate=Fraction(30000, 1001))
    return make_clip(clip_dir / "e2e.mp4", spec)


@pytest.fixture(scope="module")
def tiny_clip(clip_dir) -> Path:
    """64x48 with audio, 6 frames at 30000/1001: esrgan-lite is slow on a CPU."""
    spec = ClipSpec(width=64, height=48, frames=6, rate=Fraction(30000, 1001))
    return make_clip(clip_dir / "tiny.mp4", spec)


def test_pipeline_local_serves_esrgan_lite_x4_from_the_artifact(tiny_clip, tmp_path):
    """The mission's model through the template-built pipeline, identical to `upscale`."""
    out, reference = tmp_path / "pipeline.mp4", tmp_path / "upscale.mp4"
    job = run_local(tiny_clip, out, model="esrgan-lite", scale=4)
    assert job["status"] == jobs.DONE, job
    assert (job["model"], job["scale"], job["chunk_count"]) == ("esrgan-lite", 4, 1)
    info = probe(out)
    assert (info.video.width, info.video.height, info.video.frame_count) == (256, 192, 6)
    assert frame_times_of(out) == frame_times_of(tiny_clip)
    assert packets(out, "audio") == packets(tiny_clip, "audio")
    assert info.video.colour == probe(tiny_clip).video.colour

    started = time.perf_counter()
    args = ["upscale", str(tiny_clip), "-o", str(reference), "--model", "esrgan-lite"]
    # the stack's encoder settings (the CLI's preset auto is ultrafast on a CPU)
    assert cli([*args, "--scale", "4", "--device", "cpu", "--preset", "veryfast"]) == 0
    upscale_s = time.perf_counter() - started
    assert packets(out, "video") == packets(reference, "video")
    print(f"pipeline-local {job['seconds']:.1f} s, upscale {upscale_s:.1f} s")


def test_plain_upload_gets_the_default_model(tiny_clip, tmp_path):
    """No model in the upload's metadata: split's DEFAULT_MODEL from the stack (esrgan-lite
    x4), which the endpoint serves."""
    out = tmp_path / "default.mp4"
    job = run_local(tiny_clip, out)
    assert job["status"] == jobs.DONE, job
    assert (job["model"], job["scale"]) == ("esrgan-lite", 4)
    assert probe(out).video.width == 256


def test_model_not_served_fails_at_split(tiny_clip, tmp_path):
    job = run_local(tiny_clip, tmp_path / "none.mp4", model="esrgan-lite", scale=2)
    assert job["status"] == jobs.FAILED
    assert "esrgan-lite" in job["reason"] and "x4" in job["reason"], job["reason"]
    assert not job.get("chunk_count"), "refused before any chunk was dispatched"
    assert not (tmp_path / "none.mp4").exists()


def test_artifact_serves_only_its_manifest(pipeline):
    """The endpoint stand-in imports the archive's own code, which carries no weights."""
    artifact = pipeline.artifact()
    try:
        code = artifact.modules["upscaler"].__file__
        assert Path(code).is_relative_to(artifact.root)
        assert not list((artifact.root / "code").rglob("*.pt"))
        outputs = cached().template["Outputs"]
        assert artifact.models.manifest == json.loads(outputs["ServedModels"]["Value"])
        assert artifact.models.manifest["esrgan-lite"] == [4]
        request = {"chunk": "s3://t-work/c.mp4", "output": "s3://t-work/u.mp4"}
        body = json.dumps({**request, "model": "esrgan-lite", "scale": 2}).encode()
        with pytest.raises(Exception, match="esrgan-lite x2 is not served here; served: "):
            artifact.answer(body, "application/json", "application/json")
    finally:
        artifact.close()


def test_upload_to_output_chunks_out_of_order(pipeline, e2e_clip, tmp_path):
    model = e2e_model()
    endpoint = pipeline.endpoint(endpoint_models(model, 2))
    upload(pipeline, e2e_clip, "uploads/e2e-job/holiday clip.mp4", model=model, scale="2")
    pipeline.run(endpoint, reverse=True)  # chunks complete out of order
    job = jobs.describe("e2e-job")
    assert job["status"] == jobs.DONE, job
    assert (job["model"], job["chunk_count"], job["chunks_done"]) == (model, 5, 5)
    final = "outputs/e2e-job/holiday_clip_x2.mp4"
    assert job["output"] == f"s3://{pipeline.env['OUTPUT_BUCKET']}/{final}"
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == [final]
    assert keys(pipeline.env["WORK_BUCKET"], "jobs/") == []
    out = tmp_path / "out.mp4"
    aws.client("s3").download_file(pipeline.env["OUTPUT_BUCKET"], final, str(out))
    info = probe(out)
    assert (info.video.width, info.video.height, info.video.frame_count) == (128, 96, 40)
    assert frame_times_of(out) == frame_times_of(e2e_clip)
    assert packets(out, "audio") == packets(e2e_clip, "audio")


def test_bad_upload_fails_with_a_reason_and_no_output(pipeline, tmp_path, bicubic_models):
    endpoint = pipeline.endpoint(bicubic_models)
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 2000)  # an MP4 header, then junk
    upload(pipeline, bad, "uploads/e2e-bad/clip.mp4")
    pipeline.run(endpoint)
    job = jobs.describe("e2e-bad")
    assert job["status"] == jobs.FAILED and job["reason"].startswith("clip.mp4:")
    assert keys(pipeline.env["OUTPUT_BUCKET"]) == []


def test_exact_environment_is_the_templates(pipeline, monkeypatch):
    """With `exact`, a handler sees its function's variables only, with the template's values."""
    monkeypatch.setenv("CHUNK_SECONDS", "0.25")
    monkeypatch.setenv("STALE_AFTER_S", "1")
    pipeline.exact = True
    with pipeline.function_env("dispatch"):
        assert os.environ["CHUNK_SECONDS"] == "10"
        assert os.environ["POWERTOOLS_SERVICE_NAME"] == "upscaler-dispatch"
        assert "STALE_AFTER_S" not in os.environ  # the sweep function's, not dispatch's
    with pipeline.function_env("sweep"):
        assert os.environ["STALE_AFTER_S"] == "7200"
    assert (os.environ["CHUNK_SECONDS"], os.environ["STALE_AFTER_S"]) == ("0.25", "1")


def test_cli_pipeline_local(tiny_clip, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    args = ["pipeline-local", str(tiny_clip), "-o", str(out), "--model", "bicubic"]
    assert cli([*args, "--scale", "2", "--json"]) == 0
    stdout = capsys.readouterr().out
    job = json.loads(stdout[stdout.index("{\n") :])  # after any handler log line
    assert (job["status"], job["model"], job["scale"]) == ("DONE", "bicubic", 2)
    assert probe(out).video.frame_count == 6
    assert cli(["pipeline-local", str(tmp_path / "none.mp4"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def _luma(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        planes = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    return np.stack(planes).astype(np.int16)


def test_window_model_reads_across_chunk_borders(pipeline, e2e_clip, tmp_path, monkeypatch):
    """A multi-frame model on the endpoint reads its window from the neighbouring chunks the
    work item names: five chunks through the pipeline give the frames `upscale` gives in one
    piece (both lossless, so the pixels compare)."""
    torch.manual_seed(0)  # untrained weights: every frame of the window counts
    checkpoint = tmp_path / "mf.pt"
    save_checkpoint(checkpoint, "fast-mf", 2, {}, get_spec("fast-mf").builder(2).state_dict())
    monkeypatch.setenv("SERVED_MODELS", json.dumps({"mf": [2]}))
    endpoint = pipeline.endpoint(endpoint_models(str(checkpoint), 2))
    upload(pipeline, e2e_clip, "uploads/mf-job/clip.mp4", model="mf", scale="2", crf="0")
    pipeline.run(endpoint)
    job = jobs.describe("mf-job")
    assert job["status"] == jobs.DONE and job["chunk_count"] == 5, job
    out, whole = tmp_path / "out.mp4", tmp_path / "whole.mp4"
    aws.client("s3").download_file(*aws.parse_s3_uri(job["output"]), str(out))
    args = ["--model", str(checkpoint), "--crf", "0", "--chunk-seconds", "100"]
    assert cli(["upscale", str(e2e_clip), "-o", str(whole), *args, "--runtime", "torch"]) == 0
    difference = np.abs(_luma(out) - _luma(whole))
    assert difference.shape[0] == 40 and difference.max() <= 1, difference.max(axis=(1, 2))
