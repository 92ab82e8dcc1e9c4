"""Tile many small images into one array, so a grid is drawn by a single image item."""
from __future__ import annotations

import math

import numpy as np


def grid_shape(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, cols) for n tiles, roughly ``aspect`` times wider than tall."""
    if n <= 0:
        return 0, 0
    cols = max(1, math.ceil(math.sqrt(n * aspect)))
    return math.ceil(n / cols), cols


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1, fill: float = np.nan) -> tuple[np.ndarray, int, int]:
    """(N, h, w) or (N, h, w, 3) -> one (rows*(h+pad)-pad, cols*(w+pad)-pad[, 3]) array.

    Returns the array and (rows, cols). Gaps are ``fill`` (NaN draws as transparent).
    """
    n, h, w = images.shape[:3]
    if cols is None:
        rows, cols = grid_shape(n)
    else:
        rows = math.ceil(n / max(1, cols))
    extra = images.shape[3:]
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, *extra), fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return out, rows, cols


def tile_at(x: float, y: float, h: int, w: int, rows: int, cols: int, pad: int = 1) -> int | None:
    """Index of the tile under array position (x = column, y = row), or None."""
    if x < 0 or y < 0:
        return None
    c, r = int(x // (w + pad)), int(y // (h + pad))
    if c >= cols or r >= rows or x - c * (w + pad) >= w or y - r * (h + pad) >= h:
        return None
    return r * cols + c
