"""SageMaker inference handler (PyTorch container hooks) for the upscaler endpoint.

Two kinds of request:

- `application/json`: a chunk job spec, as the pipeline's dispatch sends it asynchronously:
  {"chunk": "s3://…/chunk_00001.mp4", "output": "s3://…/up/chunk_00001.mp4", "model": "fast",
  "scale": 2, "codec": "h264", "crf": 18, "preset": "veryfast"}. The chunk is read from S3,
  upscaled by the core engine (GPU fp16 when present, tiles sized from free memory) and written
  to `output`; the answer is JSON {frames, seconds, fps, width, height, output}.
- `image/png` or `image/jpeg`: one picture, answered with the upscaled PNG.

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

from upscaler.engine.image import upscale_image
from upscaler.engine.pipeline import upscale_chunk
from upscaler.engine.runner import Upscaler
from upscaler.errors import UpscalerError
from upscaler.media.limits import Limits
from upscaler.media.writer import EncodeSettings
from upscaler.models.checkpoint import read_checkpoint
from upscaler.models.registry import DEFAULT_MODEL

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


SCALES = (2, 3, 4)
IMAGE_TYPES = ("image/png", "image/jpeg")


@dataclass(frozen=True)
class ChunkRequest:
    chunk: str
    output: str
    model: str | None
    scale: int | None
    settings: EncodeSettings


class Models:
    """The served model plus any other registry model a request names (loaded once each)."""

    def __init__(self, default: Upscaler, name: str, device: str) -> None:
        self.default, self.name, self.device = default, name, device
        self._cache = {(name, default.scale): default}

    def get(self, name: str | None = None, scale: int | None = None) -> Upscaler:
        key = (name or self.name, scale or self.default.scale)
        if key not in self._cache:
            try:
                self._cache[key] = Upscaler(key[0], key[1], self.device)
            except UpscalerError as exc:
                raise BadRequest(str(exc)) from None
        return self._cache[key]


def model_fn(model_dir: str) -> Models:
    """Load `model_dir/model.pt` if present, else the registry model UPSCALER_MODEL."""
    device = os.environ.get("UPSCALER_DEVICE", "auto")
    checkpoint = Path(model_dir) / "model.pt"
    if checkpoint.is_file():
        payload = read_checkpoint(checkpoint)
        name, scale = str(payload["arch"]), int(payload["scale"])
        upscaler = Upscaler(str(checkpoint), scale, device)
    else:
        name = os.environ.get("UPSCALER_MODEL", DEFAULT_MODEL)
        scale = int(os.environ.get("UPSCALER_SCALE", "2"))
        upscaler = Upscaler(name, scale, device)
    return Models(upscaler, name, device)


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
    model, scale = spec.get("model"), spec.get("scale")
    if model is not None and not isinstance(model, str):
        raise BadRequest('"model" must be a model name')
    if scale is not None and scale not in SCALES:
        raise BadRequest(f'"scale" must be one of {SCALES}')
    try:
        settings = EncodeSettings(
            codec=str(spec.get("codec", "h264")),
            crf=int(spec.get("crf", 18)),
            preset=str(spec.get("preset", "veryfast")),
        )
    except (UpscalerError, ValueError, TypeError) as exc:
        raise BadRequest(str(exc)) from None
    return ChunkRequest(spec["chunk"], spec["output"], model, scale, settings)


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


def _upscale_chunk(request: ChunkRequest, models: Models) -> dict[str, Any]:
    upscaler = models.get(request.model, request.scale)
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="chunk-") as tmp:
        src, dst = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        bucket, key = _s3_location(request.chunk, "chunk")
        try:
            s3.download_file(bucket, key, str(src))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise BadRequest(f"cannot read {request.chunk} ({code or exc})", 404) from None
        try:
            result = upscale_chunk(src, dst, upscaler, request.settings, batch=4)
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
