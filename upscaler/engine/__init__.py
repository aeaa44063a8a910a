"""Engine: frames -> tensors -> model -> frames (batching, tiling, devices, streaming)."""
