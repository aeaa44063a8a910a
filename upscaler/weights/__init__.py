"""Shipped checkpoints (`<model>_x<scale>.pt`), found through the model registry."""
