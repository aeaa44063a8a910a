"""`--out -`: the enhanced video and the source's audio, muxed live as MPEG-TS.

Video is encoded with x264 tuned for latency (no lookahead, no B-frames); the audio packets
are stream-copied. Both keep the source's own timestamps, so a player keeps them in sync
however late the enhanced video is in wall-clock time, and a dropped frame is a gap in the
video timestamps rather than a shift. One writer thread owns the muxer; the source and the
scheduler hand it packets and frames through a bounded queue.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from typing import Any, BinaryIO

import av

from upscaler.engine.encoder import AUTO_PRESET
from upscaler.errors import MediaError, OutputError
from upscaler.live.source import VideoInfo
from upscaler.media.frames import planes_to_frame
from upscaler.media.writer import output_pix_fmt

_CLOSE = object()


class TsOutput:
    """An MPEG-TS muxer on `fileobj` fed from any thread (`video`, `audio`, `close`)."""

    def __init__(
        self,
        fileobj: BinaryIO,
        info: VideoInfo,
        scale: int,
        audio_stream: Any = None,
        preset: str = "auto",
        crf: int = 20,
        queue_size: int = 64,
    ) -> None:
        self._fileobj = fileobj
        self.info = info
        self.scale = scale
        self.frames = 0
        self.audio_packets = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        try:
            self._out = av.open(fileobj, "w", format="mpegts")
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise OutputError(f"cannot write MPEG-TS ({exc})") from None
        self._pix_fmt = output_pix_fmt(info.pix_fmt, "libx264")
        rate = info.rate or Fraction(30)
        self._video = self._out.add_stream("libx264", rate=rate)
        self._video.width = info.width * scale
        self._video.height = info.height * scale
        self._video.pix_fmt = self._pix_fmt
        self._video.time_base = info.time_base
        self._video.codec_context.time_base = info.time_base
        self._video.options = {
            "preset": AUTO_PRESET if preset == "auto" else preset,  # as for files
            "tune": "zerolatency",
            "crf": str(crf),
            "g": str(max(1, round(float(rate)))),  # a keyframe every second for late joiners
        }
        self._audio = None
        self._audio_in = audio_stream
        if audio_stream is not None:
            self._audio = self._out.add_stream_from_template(audio_stream)
        self._thread = threading.Thread(target=self._run, name="ts-output", daemon=True)
        self._thread.start()

    def video(self, planes: list, pts: int, duration: int) -> None:
        """Queue one enhanced frame (planes in `info.pix_fmt`, pts in `info.time_base`)."""
        self._put(("v", planes, pts, duration))

    def audio(self, packet: av.Packet) -> None:
        """Queue one source audio packet for stream copy."""
        if self._audio is not None:
            self._put(("a", packet))

    def _put(self, item: Any) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        if self.error is not None and not self.reader_gone:
            raise MediaError(f"writing the MPEG-TS output failed ({self.error})")

    @property
    def reader_gone(self) -> bool:
        """The pipe's reader went away (a player was closed): stop quietly."""
        return isinstance(self.error, BrokenPipeError) or "Broken pipe" in str(self.error)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _CLOSE:
                    break
                if item[0] == "v":
                    _, planes, pts, duration = item
                    frame = planes_to_frame(planes, self.info.pix_fmt)
                    if self._pix_fmt != self.info.pix_fmt:
                        frame = frame.reformat(format=self._pix_fmt)
                    frame.pts, frame.duration = pts, duration
                    frame.time_base = self.info.time_base
                    self._out.mux(self._video.encode(frame))
                    self.frames += 1
                else:
                    packet = item[1]
                    packet.stream = self._audio
                    self._out.mux(packet)
                    self.audio_packets += 1
                self._fileobj.flush()
            self._out.mux(self._video.encode(None))
        except BaseException as exc:  # reported by close()
            self.error = exc
        finally:
            try:
                self._out.close()
            except Exception as exc:
                self.error = self.error or exc

    def close(self, timeout: float = 30.0) -> None:
        """Flush the encoder and finish the stream; raises if writing failed."""
        if self._thread.is_alive():
            self._put(_CLOSE)
            self._thread.join(timeout)
        if self.error is not None:
            if self.reader_gone:
                return  # not our failure
            raise MediaError(f"writing the MPEG-TS output failed ({self.error})")
