"""Fail before paying: a job's needs from merge's scratch space and from the endpoint,
estimated at split from the object's size and the probe, against the deployment's limits.

A job refused here has cost one split; found at merge, it would have cost every chunk's
endpoint time first.
"""

from __future__ import annotations

from upscaler import cost
from upscaler.errors import InputError, LimitExceededError
from upscaler.media.chunks import ChunkSpec
from upscaler.media.probe import MediaInfo

#: Lambda's largest ephemeral storage (/tmp); merge is deployed with it.
LAMBDA_MAX_EPHEMERAL_MIB = 10240


def upscaled_bytes(source_bytes: int, scale: int) -> int:
    """The upscaled video's size: the source's bitrate times the pixel ratio, scale².

    An upper-end estimate: at one quality, a video's bitrate grows at most about as fast as
    its pixel count, and upscaled frames (smooth detail) compress at least as well.
    """
    return source_bytes * scale * scale


def merge_scratch_bytes(source_bytes: int, scale: int) -> int:
    """What merge holds on /tmp at once: the source, the upscaled chunks and the output."""
    return source_bytes + 2 * upscaled_bytes(source_bytes, scale)


def check_merge_scratch(source_bytes: int, scale: int, scratch_mib: int) -> None:
    """Refuse a job whose merge would not fit the merge function's ephemeral storage."""
    need = merge_scratch_bytes(source_bytes, scale)
    if need <= scratch_mib * 2**20:
        return
    if scratch_mib >= LAMBDA_MAX_EPHEMERAL_MIB:
        remedy = "Lambda's maximum, which no context parameter raises: use a smaller scale"
    else:
        remedy = f"raise the merge function's ephemeral storage (up to {LAMBDA_MAX_EPHEMERAL_MIB})"
    raise LimitExceededError(
        f"merge would need about {need / 2**30:.1f} GiB of scratch space (the source plus twice "
        f"the x{scale} upscaled estimate), over the merge function's ephemeral storage limit of "
        f"{scratch_mib} MiB ({remedy})"
    )


def chunk_endpoint_seconds(
    chunk: ChunkSpec, info: MediaInfo, model: str, scale: int, instance: str
) -> float | None:
    """The endpoint time of one chunk from the throughput table; None where it has no rate
    for this model on this instance (nothing to estimate from)."""
    try:
        _, _, busy = cost.endpoint_seconds(
            chunk.frame_count, info.video.width, info.video.height, scale, model, instance
        )
    except InputError:
        return None
    return busy


def check_chunk_time(
    chunks: list[ChunkSpec],
    info: MediaInfo,
    model: str,
    scale: int,
    instance: str,
    timeout_s: float,
) -> None:
    """Refuse a job whose longest chunk would outlast the async invocation timeout."""
    longest = max(chunks, key=lambda c: c.frame_count)
    seconds = chunk_endpoint_seconds(longest, info, model, scale, instance)
    if seconds is not None and seconds > timeout_s:
        raise LimitExceededError(
            f"chunk {longest.index} ({longest.frame_count} frames) needs about {seconds:.0f} s "
            f"of {model} x{scale} on {instance}, over the endpoint's async invocation limit of "
            f"{timeout_s:.0f} s; lower the chunk_seconds context parameter or deploy a faster "
            "instance_type"
        )
