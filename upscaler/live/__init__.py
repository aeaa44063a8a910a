"""Live mode: enhance a stream in real time (see docs/LIVE.md).

`source` opens and paces the input, `pacing` holds the clock, the bounded queue and the
scheduler that degrades late frames, `server` the loopback web view, `output` the MPEG-TS
writer, `session` ties them together and `cli` registers `upscaler live`.
"""
