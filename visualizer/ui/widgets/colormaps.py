"""Colour maps with a meaning: sequential for magnitudes, diverging (centred on 0) for signed values."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyqtgraph as pg

SEQUENTIAL = "viridis"  # activations, probabilities: dark = low, yellow = high
HEAT = "inferno"  # counts over time (histogram heat maps)
CLASS_COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


@lru_cache(maxsize=None)
def colormap(name: str) -> pg.ColorMap:
    """A pyqtgraph colour map; "diverging" is blue-white-red for signed values."""
    if name == "diverging":
        pos = np.array([0.0, 0.5, 1.0])
        colors = np.array([[33, 102, 172, 255], [247, 247, 247, 255], [178, 24, 43, 255]], dtype=np.ubyte)
        return pg.ColorMap(pos, colors)
    return pg.colormap.get(name)


def class_color(index: int) -> tuple[int, int, int]:
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def symmetric_levels(values: np.ndarray) -> tuple[float, float]:
    """Levels centred on zero that cover ``values`` (for diverging maps)."""
    finite = values[np.isfinite(values)] if values.size else values
    m = float(np.abs(finite).max()) if finite.size else 1.0
    m = m if m > 0 else 1.0
    return -m, m


def range_levels(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)] if values.size else values
    if not finite.size:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
