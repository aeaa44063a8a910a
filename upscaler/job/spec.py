"""The job spec (model, scale, picture treatment, encode settings) and its one validator.

The CLI, split (object metadata), fetch (the event), the endpoint (the request body) and
`upscaler submit` all build a `JobSpec` through `JobSpec.parse`, so a value one of them
accepts is accepted by all of them and refused with the same words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from upscaler.errors import InputError
from upscaler.media.filters import DEINTERLACE_MODES, Picture
from upscaler.media.probe import VideoInfo
from upscaler.media.writer import EncodeSettings

SCALES = (2, 3, 4)
#: A registry model name (a remote request can only name a model, never a file).
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
#: Defaults of the encode settings (EncodeSettings' own) and of the picture treatment.
ENCODE_DEFAULTS = {"codec": "h264", "crf": 18, "preset": "veryfast"}
PICTURE_DEFAULTS = {"deinterlace": "auto", "square_pixels": False}
FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _whole(value: Any, field: str) -> int:
    """An int from JSON (int) or from text (metadata, environment); InputError otherwise."""
    if isinstance(value, bool):
        raise InputError(f"{field} must be a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InputError(f"{field} must be a whole number, not {value!r}")


def _flag(value: Any, field: str) -> bool:
    """A yes/no from JSON (bool) or from text (metadata: "true"/"false", "1"/"0", "yes"/"no")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in FLAGS:
        return FLAGS[value.strip().lower()]
    raise InputError(f"{field} must be true or false, not {value!r}")


@dataclass(frozen=True)
class JobSpec:
    """What to do with one video: which model at which scale, how to treat its pictures
    before the model (deinterlace, square pixels) and how to encode."""

    model: str
    scale: int
    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"
    deinterlace: str = "auto"
    square_pixels: bool = False

    def __post_init__(self) -> None:
        if self.scale not in SCALES or isinstance(self.scale, bool):
            raise InputError(f"scale must be one of {SCALES}, not {self.scale!r}")
        if self.deinterlace not in DEINTERLACE_MODES:
            raise InputError(f"deinterlace must be one of {', '.join(DEINTERLACE_MODES)}")
        self.settings  # noqa: B018 - EncodeSettings refuses a bad codec, crf or preset

    def picture(self, video: VideoInfo) -> Picture:
        """The treatment for this video: `auto` resolved against its probe (interlaced or not).

        The cloud resolves it once per job, at split, and sends the resolved mode with every
        chunk, so no chunk decides on its own."""
        return Picture.choose(self.deinterlace, self.square_pixels, video)

    @property
    def settings(self) -> EncodeSettings:
        return EncodeSettings(codec=self.codec, crf=self.crf, preset=self.preset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(
        cls,
        fields: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
        *,
        checkpoint_paths: bool = False,
    ) -> JobSpec:
        """Validate `fields` (empty values fall back to `defaults`, then the encode defaults).

        Values may be text (S3 metadata, environment) or JSON numbers. `checkpoint_paths`
        lets `model` be a local checkpoint file (the CLI); remote requests name a model.
        Raises InputError (model, scale, numbers) or OutputError (codec, crf, preset).
        """
        merged = {
            **ENCODE_DEFAULTS,
            **PICTURE_DEFAULTS,
            **_present(defaults or {}),
            **_present(fields),
        }
        model, scale = merged.get("model"), merged.get("scale")
        if model is None or scale is None:
            raise InputError("the job needs a model and a scale")
        if not isinstance(model, str) or not (checkpoint_paths or MODEL_NAME.match(model)):
            raise InputError(f"invalid model name {model!r}")
        if isinstance(scale, bool) or str(scale).strip() not in {str(s) for s in SCALES}:
            raise InputError(f"scale must be one of {SCALES}, not {scale!r}")
        return cls(
            model=model,
            scale=int(scale),
            codec=str(merged["codec"]),
            crf=_whole(merged["crf"], "crf"),
            preset=str(merged["preset"]),
            deinterlace=str(merged["deinterlace"]),
            square_pixels=_flag(merged["square_pixels"], "square_pixels"),
        )


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that carry a value ("" and None mean: not given)."""
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def parse_served(text: str) -> dict[str, tuple[int, ...]]:
    """`{"model": [scales]}` (the SERVED_MODELS value) -> model -> sorted scales.

    ValueError with the reason for anything else: it is a deployment's mistake, not a user's.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ValueError('expected a non-empty {"model": [scales]} object')
    served = {}
    for model, scales in data.items():
        if not isinstance(scales, list) or not scales or not set(scales) <= set(SCALES):
            raise ValueError(f"model {model!r}: scales must be a non-empty list from {SCALES}")
        served[str(model)] = tuple(sorted(set(scales)))
    return served


def describe_served(served: Mapping[str, tuple[int, ...]]) -> str:
    """`compact x2/x4, esrgan-lite x4` (a refusal lists what is served)."""
    return ", ".join(
        f"{model} " + "/".join(f"x{s}" for s in scales) for model, scales in sorted(served.items())
    )


def check_served(spec: JobSpec, served: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a job for a model/scale the endpoint does not serve, before any work."""
    if spec.scale not in served.get(spec.model, ()):
        raise InputError(
            f"{spec.model} x{spec.scale} is not served by this endpoint; "
            f"it serves {describe_served(served)}"
        )
