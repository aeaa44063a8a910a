"""Media layer: PyAV (the FFmpeg libraries) only. Probe, chunk, decode, encode, merge."""
