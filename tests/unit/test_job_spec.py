"""The one job-spec validator: text (S3 metadata, environment) and JSON values alike."""

from __future__ import annotations

import pytest

from upscaler.errors import InputError, OutputError
from upscaler.job import JobSpec, check_served, parse_served

DEFAULTS = {"model": "fast", "scale": "2", "codec": "h264", "crf": "18", "preset": "veryfast"}


def test_metadata_text_over_defaults():
    spec = JobSpec.parse({"model": "compact", "scale": "4", "crf": "0", "codec": ""}, DEFAULTS)
    assert spec == JobSpec("compact", 4, "h264", 0, "veryfast")
    assert spec.settings.crf == 0 and spec.to_dict()["scale"] == 4


def test_json_numbers_and_missing_fields_take_the_defaults():
    assert JobSpec.parse({"scale": 4, "model": None}, DEFAULTS) == JobSpec("fast", 4)
    assert JobSpec.parse({}, DEFAULTS) == JobSpec("fast", 2)


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        ({"scale": "7"}, InputError, "scale must be one of (2, 3, 4), not '7'"),
        ({"scale": 8}, InputError, "scale must be one of (2, 3, 4), not 8"),
        ({"scale": True}, InputError, "scale must be one of"),
        ({"model": "../etc/passwd"}, InputError, "invalid model name '../etc/passwd'"),
        ({"model": 3}, InputError, "invalid model name 3"),
        ({"crf": "high"}, InputError, "crf must be a whole number, not 'high'"),
        ({"crf": "60"}, OutputError, "crf must be between 0 and 51"),
        ({"codec": "vp9x"}, OutputError, "unknown codec 'vp9x'"),
        ({"preset": "warp"}, OutputError, "unknown preset 'warp'"),
        ({"deinterlace": "weave"}, InputError, "deinterlace must be one of auto, off, frame"),
        ({"square_pixels": "maybe"}, InputError, "square_pixels must be true or false"),
        ({"square_pixels": 1}, InputError, "square_pixels must be true or false, not 1"),
    ],
)
def test_bad_values_are_refused_with_one_line(fields, error, words):
    with pytest.raises(error) as info:
        JobSpec.parse(fields, DEFAULTS)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_picture_fields_from_metadata_text_and_json():
    """`x-amz-meta-square-pixels: true` and a JSON `true` ask for the same treatment."""
    text = JobSpec.parse({"deinterlace": "field", "square_pixels": "TRUE"}, DEFAULTS)
    assert text == JobSpec.parse({"deinterlace": "field", "square_pixels": True}, DEFAULTS)
    assert (text.deinterlace, text.square_pixels) == ("field", True)
    plain = JobSpec.parse({"square_pixels": "no"}, DEFAULTS)
    assert (plain.deinterlace, plain.square_pixels) == ("auto", False)


def test_without_defaults_model_and_scale_are_required():
    with pytest.raises(InputError, match="needs a model and a scale"):
        JobSpec.parse({"model": "fast"})


def test_only_the_cli_may_name_a_checkpoint_file():
    fields = {"model": "runs/best.pt", "scale": 2}
    assert JobSpec.parse(fields, checkpoint_paths=True).model == "runs/best.pt"
    with pytest.raises(InputError, match="invalid model name"):
        JobSpec.parse(fields)


def test_a_spec_built_directly_is_validated_too():
    with pytest.raises(InputError):
        JobSpec("fast", 5)
    with pytest.raises(OutputError):
        JobSpec("fast", 2, crf=-1)


SERVED = '{"esrgan-lite": [4], "esrgan-lite-gan": [4], "fast": [2, 4], "compact": [4, 2]}'


def test_served_models_parse_and_refusals_list_what_is_served():
    served = parse_served(SERVED)
    assert served["compact"] == (2, 4)
    check_served(JobSpec("fast", 4), served)
    with pytest.raises(InputError) as info:
        check_served(JobSpec("fast", 3), served)
    assert str(info.value) == (
        "fast x3 is not served by this endpoint; it serves compact x2/x4, esrgan-lite x4, "
        "esrgan-lite-gan x4, fast x2/x4"
    )
    with pytest.raises(InputError, match="bicubic x2 is not served"):
        check_served(JobSpec("bicubic", 2), served)


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"fast": 2}', '{"fast": [5]}', '{"fast": []}'])
def test_malformed_served_models_are_refused(text):
    with pytest.raises(ValueError):
        parse_served(text)
