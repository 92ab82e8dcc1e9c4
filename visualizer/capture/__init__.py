"""Torch-only probes that watch a model from outside, and the session loop that publishes frames."""
