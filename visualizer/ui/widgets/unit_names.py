"""How to speak of a layer's units in captions: channels of feature maps, units of dense
layers, and how many there are (from the run's layer shapes)."""
from __future__ import annotations

from visualizer.stream.frames import LayerInfo, RunInfo


def _info(run: RunInfo | None, layer: str) -> LayerInfo | None:
    return next((l for l in run.layers if l.name == layer), None) if run else None


def unit_count(run: RunInfo | None, layer: str) -> int | None:
    """Channels of a layer with feature maps (C, H, W), features of a sequence (T, D), units
    of a dense layer (U,); None when the layer or its shape is unknown."""
    info = _info(run, layer)
    if info is None or not info.output_shape:
        return None
    shape = tuple(info.output_shape)
    return int(shape[-1] if len(shape) == 2 else shape[0])


def unit_word(run: RunInfo | None, layer: str) -> str:
    """"channel" for layers with feature maps, "unit" otherwise."""
    info = _info(run, layer)
    return "channel" if info is not None and len(info.output_shape) == 3 else "unit"
