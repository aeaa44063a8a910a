"""One exception hierarchy for the core: every failure a user can cause maps to one of these.

The CLI turns them into a one-line message and an exit code; the cloud handlers into a
FAILED job with the message as its reason.
"""


class UpscalerError(Exception):
    """Base class of every error the core raises on purpose."""

    exit_code = 1


class InputError(UpscalerError):
    """The input cannot be used: missing, empty, not a video, corrupt, or refused by policy."""

    exit_code = 2


class LimitExceededError(InputError):
    """The input is valid but larger than a configured limit (bytes, pixels, duration...)."""

    exit_code = 3


class ModelError(UpscalerError):
    """Unknown model, bad checkpoint, or a checkpoint that does not match the request."""

    exit_code = 4


class OutputError(UpscalerError):
    """The output cannot be written (bad path, unsupported container/codec combination)."""

    exit_code = 5


class MediaError(UpscalerError):
    """Decoding, encoding or muxing failed part-way through."""

    exit_code = 6
