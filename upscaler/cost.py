"""Cost of upscaling a video on the AWS pipeline, from throughput and list prices.

Data: `cost_data/prices.json` (on-demand prices with their date and source) and
`cost_data/throughput.json` (model and codec rates, each marked measured / assumed, plus the
pipeline's assumed Lambda and message sizes). The formula (also in docs/SAGEMAKER.md):

    frames   = duration * fps
    model_s  = frames * W * H / model_rate        (input px/s; CPU rates x vCPUs)
    codec_s  = frames * W * H * s^2 / codec_rate  (decode + encode on the instance's vCPUs)
    busy_s   = max(model_s, codec_s) on a GPU instance (they overlap),
               model_s + codec_s on a CPU instance (they share the cores)
    endpoint = busy_s * $/h / 3600;  scale-to-zero overhead = (cold start + idle tail) * $/h
    pipeline = Lambda GB-s + requests, S3 requests + storage, SQS, SNS, DynamoDB per chunk
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from upscaler.errors import InputError

DATA = Path(__file__).parent / "cost_data"
_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?")


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def prices() -> dict[str, Any]:
    """The price table (`prices.json`)."""
    return _load("prices.json")


def throughput() -> dict[str, Any]:
    """The throughput table (`throughput.json`)."""
    return _load("throughput.json")


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "10m", "1h30m", "1h2m3.5s"."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d*)?", text):
        text += "s"
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise InputError(f"duration must look like 90s, 10m or 1h30m, not {text!r}")
    h, m, s = (float(v) if v else 0.0 for v in match.groups())
    seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise InputError(f"duration must be positive, not {text!r}")
    return seconds


def model_rate(model: str, instance: str) -> dict[str, Any]:
    """Input px/s of `model` on `instance`, with the status and source of the number.

    A name in the table's `same_network` (other weights, one network) has its network's rate.
    """
    inst = _instance(instance)
    model = throughput().get("same_network", {}).get(model, model)
    for entry in throughput()["models"]:
        if entry["model"] == model and entry["device"] == inst["device"]:
            if inst["device"] != "cpu":
                return {**entry, "px_per_s": entry["input_mpx_per_s"] * 1e6}
            status = "derived" if entry["status"] == "measured" else entry["status"]
            return {
                **entry,
                "status": status,
                "source": f"{entry['source']}; x {inst['vcpus']} vCPUs",
                "px_per_s": entry["input_mpx_per_s"] * 1e6 * inst["vcpus"],
            }
    known = sorted({e["model"] for e in throughput()["models"] if e["device"] == inst["device"]})
    raise InputError(f"no throughput for {model!r} on {instance}; known: {', '.join(known)}")


def _instance(instance: str) -> dict[str, Any]:
    instances = prices()["instances"]
    if instance not in instances:
        raise InputError(f"no price for {instance!r}; known: {', '.join(sorted(instances))}")
    return instances[instance]


def _pipeline_usd(duration_s: float, chunks: int, in_bytes: float, out_bytes: float) -> dict:
    p, pipe = prices(), throughput()["pipeline"]
    minutes = duration_s / 60
    gb_s = sum(
        pipe[k]["memory_gb"] * (pipe[k]["base_s"] + pipe[k]["s_per_video_minute"] * minutes)
        for k in ("split", "merge")
    )
    per_chunk = pipe["per_chunk"]
    gb_s += chunks * per_chunk["invocations"] * per_chunk["memory_gb"] * per_chunk["s"]
    invocations = 2 + chunks * per_chunk["invocations"]
    # S3: chunk written by split, read + written + result by the endpoint, read by merge.
    puts, gets = 3 * chunks + 3, 2 * chunks + 2
    # input + chunks + upscaled chunks + output, kept `retention_days`.
    gb_month = 2 * (in_bytes + out_bytes) / 1e9 * pipe["retention_days"] / 30
    return {
        "lambda_usd": gb_s * p["lambda"]["usd_per_gb_s"]
        + invocations * p["lambda"]["usd_per_request"],
        "s3_usd": puts * p["s3"]["usd_per_put"]
        + gets * p["s3"]["usd_per_get"]
        + gb_month * p["s3"]["usd_per_gb_month"],
        # send + receive + delete for each work, result and merge message
        "sqs_usd": 3 * (2 * chunks + 1) * p["sqs"]["usd_per_request"],
        "sns_usd": chunks * p["sns"]["usd_per_publish"],
        "dynamodb_usd": (2 * chunks + 2) * p["dynamodb"]["usd_per_write"]
        + chunks * p["dynamodb"]["usd_per_read"],
    }


def endpoint_seconds(
    frames: int, width: int, height: int, scale: int, model: str, instance: str
) -> tuple[float, float, float]:
    """(model_s, codec_s, busy_s) of `frames` input frames on one `instance` (the formula)."""
    inst, codec = _instance(instance), throughput()["codec"]
    rate = model_rate(model, instance)
    in_px, out_px = width * height, width * height * scale**2
    model_s = frames * in_px / rate["px_per_s"]
    codec_s = frames * out_px / (codec["output_mpx_per_s_per_vcpu"] * 1e6 * inst["vcpus"])
    busy_s = model_s + codec_s if inst["device"] == "cpu" else max(model_s, codec_s)
    return model_s, codec_s, busy_s


def estimate_cost(
    input_duration_s: float,
    width: int,
    height: int,
    scale: int,
    model: str,
    instance: str,
    fps: float = 30.0,
) -> dict[str, Any]:
    """Endpoint time and $ for one video on `instance`, plus the serverless pipeline's $."""
    if min(input_duration_s, width, height, scale, fps) <= 0:
        raise InputError("duration, size, scale and fps must be positive")
    inst, codec = _instance(instance), throughput()["codec"]
    rate = model_rate(model, instance)
    frames = math.ceil(input_duration_s * fps)
    in_px, out_px = width * height, width * height * scale**2
    model_s, codec_s, busy_s = endpoint_seconds(frames, width, height, scale, model, instance)
    usd_per_s = inst["usd_per_hour"] / 3600
    stz = prices()["scale_to_zero"]
    pipe = throughput()["pipeline"]
    bytes_per_px = pipe["bits_per_pixel"] / 8
    side = _pipeline_usd(
        input_duration_s,
        math.ceil(input_duration_s / pipe["chunk_seconds"]),
        frames * in_px * bytes_per_px,
        frames * out_px * bytes_per_px,
    )
    endpoint_usd = busy_s * usd_per_s
    overhead_usd = (stz["cold_start_s"] + stz["idle_tail_s"]) * usd_per_s
    pipeline_usd = sum(side.values())
    return {
        "model": model,
        "instance": instance,
        "scale": scale,
        "input": f"{width}x{height}",
        "output": f"{width * scale}x{height * scale}",
        "duration_s": input_duration_s,
        "frames": frames,
        "model_rate": {k: rate[k] for k in ("input_mpx_per_s", "status", "source")},
        "codec_status": codec["status"],
        "bottleneck": "model" if model_s >= codec_s else "codec",
        "model_s": model_s,
        "codec_s": codec_s,
        "endpoint_s": busy_s,
        "endpoint_fps": frames / busy_s,
        "endpoint_usd": endpoint_usd,
        "scale_to_zero_usd": overhead_usd,
        **side,
        "pipeline_usd": pipeline_usd,
        "total_usd": endpoint_usd + overhead_usd + pipeline_usd,
        "usd_per_video_minute": (endpoint_usd + pipeline_usd) / (input_duration_s / 60),
        "prices": f"{prices()['status']} ({prices()['region']})",
    }


def compare(
    input_duration_s: float, width: int, height: int, scale: int, model: str, fps: float = 30.0
) -> list[dict[str, Any]]:
    """`estimate_cost` on every priced instance, cheapest first."""
    rows = [
        estimate_cost(input_duration_s, width, height, scale, model, name, fps)
        for name in prices()["instances"]
    ]
    return sorted(rows, key=lambda r: r["total_usd"])


def format_estimate(est: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """A human-readable report of one estimate and a comparison table."""
    rate = est["model_rate"]
    lines = [
        f"{est['model']} x{est['scale']} {est['input']} -> {est['output']}, "
        f"{est['duration_s'] / 60:.1f} min ({est['frames']} frames) on {est['instance']}",
        f"  endpoint time  {est['endpoint_s'] / 60:8.1f} min  ({est['endpoint_fps']:.2f} fps, "
        f"bound by the {est['bottleneck']})",
        f"  endpoint       ${est['endpoint_usd']:8.3f}",
        f"  scale-to-zero  ${est['scale_to_zero_usd']:8.3f}  (cold start + idle tail, once per "
        "burst)",
        f"  Lambda/S3/SQS/SNS/DynamoDB ${est['pipeline_usd']:.4f}",
        f"  total          ${est['total_usd']:8.3f}   (${est['usd_per_video_minute']:.3f} per "
        "video minute, without the scale-to-zero overhead)",
        f"  model rate {rate['input_mpx_per_s']} Mpx/s: {rate['status']} ({rate['source']})",
        f"  codec rate: {est['codec_status']}; prices: {est['prices']}",
        "",
        f"{'instance':<16}{'endpoint min':>13}{'total $':>10}{'$/video min':>13}  model rate",
    ]
    for row in others:
        lines.append(
            f"{row['instance']:<16}{row['endpoint_s'] / 60:>13.1f}{row['total_usd']:>10.3f}"
            f"{row['usd_per_video_minute']:>13.3f}  {row['model_rate']['status']}"
        )
    return "\n".join(lines)


def add_commands(sub: Any) -> None:
    """Register `upscaler cost` on the CLI's subparsers."""
    p = sub.add_parser("cost", help="estimate the AWS cost of upscaling a video")
    p.add_argument("--input-duration", required=True, help="e.g. 90s, 10m, 1h30m")
    p.add_argument("--resolution", default="1920x1080", help="input WxH (default 1920x1080)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--model", default="compact")
    p.add_argument("--instance", default="ml.g4dn.xlarge")
    p.add_argument("--fps", type=float, default=30.0, help="input frame rate (default 30)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cost)


def cmd_cost(args: Any) -> int:
    """`upscaler cost`: print the estimate and the comparison with the other instances."""
    try:
        width, height = (int(v) for v in args.resolution.lower().split("x"))
    except ValueError:
        raise InputError(f"resolution must look like 1920x1080, not {args.resolution!r}") from None
    seconds = parse_duration(args.input_duration)
    est = estimate_cost(seconds, width, height, args.scale, args.model, args.instance, args.fps)
    others = compare(seconds, width, height, args.scale, args.model, args.fps)
    print(json.dumps({**est, "compare": others}) if args.json else format_estimate(est, others))
    return 0
