"""SageMaker inference handler (PyTorch container hooks) for the upscaler endpoint.

Two kinds of request:

- `application/json`: a chunk job spec, as the pipeline's dispatch sends it asynchronously:
  {"chunk": "s3://…/chunk_00001.mp4", "output": "s3://…/up/chunk_00001.mp4", "model": "fast",
  "scale": 2, "codec": "h264", "crf": 18, "preset": "veryfast", "deinterlace": "frame",
  "square_pixels": false, "before": [...], "after": [...]}, validated by the job layer's
  `JobSpec.parse` like every other entry point. `before`/`after` name the neighbouring source
  chunks (nearest last / nearest first): a multi-frame model reads its window across the
  chunk's borders from them, so the output does not depend on where the video was cut. split
  sends the deinterlace mode it resolved once for the whole job (`auto` here decides from this
  chunk alone). The chunk is read from S3, deinterlaced or resampled to square pixels as
  asked, upscaled by the core engine (GPU fp16 when present, tiles sized from free memory) and
  written to `output`; the answer is JSON {frames, seconds, fps, width, height, output}.
- `image/png` or `image/jpeg`: one picture, answered with the upscaled PNG.

The endpoint serves exactly the models of the archive's `manifest.json` ({model: [scales]},
checkpoints under `models/`, see `upscaler.package`); a request for anything else is refused
with the list of what is served. An archive with only `model.pt` (a training job's output)
serves that one checkpoint. Requests that name no model get UPSCALER_MODEL x UPSCALER_SCALE
(the stack's default model), else the first served entry.

Requests the handler cannot serve raise `BadRequest` (a 4xx with a one-line reason). Buckets
must be listed in the ALLOWED_BUCKETS environment variable (comma-separated).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image, UnidentifiedImageError

from upscaler.cloud_contract import CONTEXT_CHUNKS
from upscaler.engine.image import upscale_image
from upscaler.engine.pipeline import Neighbours, neighbour_reach, upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.errors import UpscalerError
from upscaler.job import JobSpec
from upscaler.media.limits import Limits
from upscaler.media.probe import probe
from upscaler.models.checkpoint import read_checkpoint
from upscaler.models.registry import load_model

try:  # the inference toolkit answers with this class's status code and message
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # outside the container (tests, local pipeline)

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase


class BadRequest(_ToolkitError):
    """A request the endpoint cannot serve; `status_code` is 4xx, `message` one line."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message, "Bad Request")

    def __str__(self) -> str:
        return self.message


IMAGE_TYPES = ("image/png", "image/jpeg")


@dataclass(frozen=True)
class ChunkRequest:
    """Where the chunk is and goes, and the job spec fields as sent (parsed per model)."""

    chunk: str
    output: str
    fields: dict[str, Any]
    before: list[str]
    after: list[str]


class Models:
    """The models the archive serves (its manifest), each loaded once, on first use."""

    def __init__(self, root: Path, manifest: dict[str, list[int]], device: str) -> None:
        self.root, self.manifest, self.device = root, manifest, device
        self._cache: dict[tuple[str, int], Upscaler] = {}
        name = os.environ.get("UPSCALER_MODEL", "")
        scale = int(os.environ.get("UPSCALER_SCALE") or 0)
        if scale not in manifest.get(name, ()):
            name = next(iter(manifest))
            scale = manifest[name][0]
        self.name = name
        self.default = self._cache[(name, scale)] = self._load(name, scale)

    def served(self) -> str:
        return ", ".join(f"{n} x{'/x'.join(map(str, s))}" for n, s in self.manifest.items())

    def spec(self, fields: dict[str, Any]) -> JobSpec:
        """A request's job spec over this endpoint's defaults: the default model at its
        scale, a named model at its first served scale."""
        name = fields.get("model") or self.name
        if isinstance(name, str) and name not in self.manifest:
            raise BadRequest(f"model {name} is not served here; served: {self.served()}")
        scale = self.default.scale if name == self.name else self.manifest.get(name, [2])[0]
        try:
            return JobSpec.parse(fields, {"model": self.name, "scale": scale})
        except UpscalerError as exc:
            raise BadRequest(str(exc)) from None

    def get(self, name: str | None = None, scale: int | None = None) -> Upscaler:
        name = name or self.name
        if name not in self.manifest:
            raise BadRequest(f"model {name} is not served here; served: {self.served()}")
        scale = scale or (self.default.scale if name == self.name else self.manifest[name][0])
        if scale not in self.manifest[name]:
            raise BadRequest(f"model {name} x{scale} is not served here; served: {self.served()}")
        key = (name, scale)
        if key not in self._cache:
            self._cache[key] = self._load(name, scale)
        return self._cache[key]

    def _load(self, name: str, scale: int) -> Upscaler:
        weights = self.root / "models" / f"{name}_x{scale}.pt"
        if not weights.is_file() and (self.root / "model.pt").is_file():
            weights = self.root / "model.pt"  # a training job's artifact
        # Only the archive's own files: the vendored core carries no weights, and a name
        # without a checkpoint here is a weightless baseline (bicubic, lanczos).
        source = str(weights) if weights.is_file() else name
        upscaler = Upscaler(load_model(source, scale), scale, self.device)
        upscaler.name = name
        return upscaler


def read_manifest(model_dir: Path) -> dict[str, list[int]]:
    """`manifest.json`, or the one checkpoint `model.pt` of a training job's artifact."""
    manifest = model_dir / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return {str(name): [int(s) for s in scales] for name, scales in data.items()}
    checkpoint = model_dir / "model.pt"
    if checkpoint.is_file():
        payload = read_checkpoint(checkpoint)
        return {str(payload["arch"]): [int(payload["scale"])]}
    raise RuntimeError(f"{model_dir} holds neither manifest.json nor model.pt")


def model_fn(model_dir: str) -> Models:
    """Load the archive's default model now (a broken archive fails at start-up)."""
    root = Path(model_dir)
    return Models(root, read_manifest(root), os.environ.get("UPSCALER_DEVICE", "auto"))


def _s3_location(uri: Any, field: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise BadRequest(f'"{field}" must be an s3://bucket/key URI')
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise BadRequest(f'"{field}" must be an s3://bucket/key URI')
    allowed = {b.strip() for b in os.environ.get("ALLOWED_BUCKETS", "").split(",") if b.strip()}
    if bucket not in allowed:
        raise BadRequest(f'"{field}": bucket {bucket!r} is not one this endpoint may use', 403)
    return bucket, key


def _chunk_request(body: bytes) -> ChunkRequest:
    try:
        spec = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed JSON request ({exc})") from None
    if not isinstance(spec, dict):
        raise BadRequest("the JSON request must be an object")
    missing = [k for k in ("chunk", "output") if k not in spec]
    if missing:
        raise BadRequest(f"the request is missing {', '.join(repr(k) for k in missing)}")
    _s3_location(spec["chunk"], "chunk")
    _s3_location(spec["output"], "output")
    around = {side: spec.get(side) or [] for side in ("before", "after")}
    for side, uris in around.items():
        if not isinstance(uris, list) or len(uris) > CONTEXT_CHUNKS:
            raise BadRequest(f'"{side}" must be a list of at most {CONTEXT_CHUNKS} chunk URIs')
        for uri in uris:
            _s3_location(uri, side)
    fields = {k: v for k, v in spec.items() if k not in ("chunk", "output", *around)}
    return ChunkRequest(spec["chunk"], spec["output"], fields, around["before"], around["after"])


def _image(body: bytes) -> np.ndarray:
    limit = Limits.from_env().max_input_pixels
    try:
        with Image.open(io.BytesIO(body)) as img:
            if img.width * img.height > limit:
                raise BadRequest(f"{img.width}x{img.height} is over the limit of {limit} pixels")
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"not a readable image ({exc})") from None


def input_fn(body: bytes | str, content_type: str) -> ChunkRequest | np.ndarray:
    """Decode a request: a JSON chunk job spec, or a PNG/JPEG image."""
    data = body.encode() if isinstance(body, str) else bytes(body)
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _chunk_request(data)
    if kind in IMAGE_TYPES:
        return _image(data)
    raise BadRequest(f"unsupported content type {kind!r}; send application/json or an image", 415)


def _download(s3: Any, uri: str, path: Path) -> Path:
    """A chunk from S3 (a missing one is the request's fault: 404)."""
    bucket, key = _s3_location(uri, "chunk")
    try:
        s3.download_file(bucket, key, str(path))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise BadRequest(f"cannot read {uri} ({code or exc})", 404) from None
    return path


def _download_all(s3: Any, uris: list[str], stem: Path) -> list[Path]:
    """Neighbouring chunks, in the order given, as `<stem>0.mp4`, `<stem>1.mp4`, ..."""
    return [_download(s3, uri, Path(f"{stem}{i}.mp4")) for i, uri in enumerate(uris)]


def _upscale_chunk(request: ChunkRequest, models: Models) -> dict[str, Any]:
    spec = models.spec(request.fields)
    upscaler = models.get(spec.model, spec.scale)
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="chunk-") as tmp:
        src, dst = _download(s3, request.chunk, Path(tmp) / "in.mp4"), Path(tmp) / "out.mp4"
        try:
            picture = spec.picture(probe(src).video)
            reach_before, reach_after = neighbour_reach(upscaler, picture)
            nearest_before = request.before[-reach_before:] if reach_before else []
            around = Neighbours(
                _download_all(s3, nearest_before, Path(tmp) / "before"),
                _download_all(s3, request.after[:reach_after], Path(tmp) / "after"),
            )
            result = upscale_chunk(
                src, dst, upscaler, spec.settings, batch=4, picture=picture, neighbours=around
            )
        except UpscalerError as exc:
            message = str(exc).replace(str(src), request.chunk)
            raise BadRequest(f"cannot upscale the chunk: {message}") from None
        bucket, key = _s3_location(request.output, "output")
        try:
            s3.upload_file(str(dst), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(f"cannot write {request.output} ({exc})") from None
    return {
        "frames": result.frames,
        "seconds": round(result.seconds, 3),
        "fps": round(result.fps, 2),
        "width": result.width,
        "height": result.height,
        "model": upscaler.name,
        "scale": upscaler.scale,
        "output": request.output,
    }


def predict_fn(data: ChunkRequest | np.ndarray, model: Models) -> dict[str, Any] | np.ndarray:
    """Upscale the chunk (to S3) or the image (in memory)."""
    if isinstance(data, ChunkRequest):
        return _upscale_chunk(data, model)
    return upscale_image(data, model.get())


def output_fn(prediction: dict[str, Any] | np.ndarray, accept: str) -> tuple[bytes, str]:
    """JSON for a chunk, PNG for an image, with its content type."""
    if isinstance(prediction, dict):
        return json.dumps(prediction).encode(), "application/json"
    buffer = io.BytesIO()
    Image.fromarray(prediction).save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"
