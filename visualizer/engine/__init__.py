"""Torch-only training engine: datasets, models, the trainer, devices and checkpoints."""
