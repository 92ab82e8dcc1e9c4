"""Numpy-only data that crosses from the training thread to the UI."""
from visualizer.stream.buffers import RingBuffer, SeriesBuffer
from visualizer.stream.frames import (
    Frame,
    LayerActivation,
    LayerGradient,
    LayerInfo,
    ProbeOutputs,
    RunInfo,
    ScalarChunk,
)
from visualizer.stream.history import RunHistory
from visualizer.stream.mailbox import Mailbox

__all__ = [
    "Frame",
    "LayerActivation",
    "LayerGradient",
    "LayerInfo",
    "Mailbox",
    "ProbeOutputs",
    "RunInfo",
    "RingBuffer",
    "RunHistory",
    "ScalarChunk",
    "SeriesBuffer",
]
