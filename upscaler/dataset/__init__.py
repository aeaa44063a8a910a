"""Training data from your own footage: dataset build (scenes, sharpness, dedup, patches),
a sharded patch format read by memory mapping, and short fine-tunes of shipped models."""
