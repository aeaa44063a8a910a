"""`--deinterlace` and `--square-pixels`: the same two options on `upscale`, `submit` and
`pipeline-local`, so a job asks for the same picture treatment wherever it runs."""

from __future__ import annotations

import argparse

from upscaler.media.filters import DEINTERLACE_MODES


def add_picture_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deinterlace",
        default="auto",
        choices=DEINTERLACE_MODES,
        help="auto (ivtc for telecined film, frame when the pictures show combing), off, "
        "frame (bwdif, one frame per frame), field (one frame per field: double rate) or "
        "ivtc (3:2 pulldown removed: the film frames, 4 of each 5)",
    )
    parser.add_argument(
        "--square-pixels",
        action="store_true",
        help="resample anamorphic video to square pixels at the same display aspect",
    )


def picture_fields(args: argparse.Namespace) -> dict[str, object]:
    """The job spec fields of the two options."""
    return {"deinterlace": args.deinterlace, "square_pixels": args.square_pixels}
