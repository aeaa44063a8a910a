"""Encode RGB frames as H.264 in memory and decode them back: compression as a degradation."""

from __future__ import annotations

import io

import av
import numpy as np


def h264_roundtrip(frames: np.ndarray, crf: int, **options: str) -> np.ndarray:
    """uint8 [B,H,W,3] RGB -> one H.264 clip (yuv420p, BT.601 limited range) at `crf` -> back.

    Odd sizes are edge-padded for 4:2:0 and cropped again; `options` go to libx264
    (e.g. `preset`, `threads`, `keyint`).
    """
    h, w = frames.shape[1:3]
    pad = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = pad.shape[2], pad.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), **options}
        for img in pad:
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p", dst_colorspace="itu601")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        back = [f.to_ndarray(format="rgb24", src_colorspace="itu601") for f in inp.decode(video=0)]
    return np.stack(back)[:, :h, :w]
