"""upscaler: AI video super-resolution on CPU/GPU, locally or as a serverless AWS pipeline."""

__version__ = "0.1.0"
