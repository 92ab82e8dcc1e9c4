"""Input-like images in [0, 1] made ready to draw as RGB: grey images repeated to three
channels, a rectangle outlined on an image (e.g. a receptive field)."""
from __future__ import annotations

import numpy as np

OUTLINE = (1.0, 0.78, 0.0)  # the highlight yellow of the grids, in [0, 1]


def as_rgb(images: np.ndarray) -> np.ndarray:
    """(..., H, W, C) values in [0, 1] -> (..., H, W, 3) float32: one channel is repeated
    (grey), three are kept, any other count is averaged to grey. NaN stays NaN."""
    a = np.asarray(images, np.float32)
    if a.shape[-1] == 3:
        return a
    grey = a[..., :1] if a.shape[-1] == 1 else a.mean(-1, keepdims=True)
    return np.repeat(grey, 3, axis=-1)


def outline_box(image: np.ndarray, box: tuple[int, int, int, int], scale: int = 1, width: int = 1,
                color: tuple[float, float, float] = OUTLINE) -> np.ndarray:
    """(H, W, 3) image enlarged ``scale`` times (nearest neighbour) with the half-open box
    (top, bottom, left, right), in original pixels, outlined ``width`` display pixels thick
    just inside its edges."""
    out = np.repeat(np.repeat(np.asarray(image, np.float32), scale, 0), scale, 1).copy()
    top, bottom, left, right = (int(v) * scale for v in box)
    if bottom <= top or right <= left:
        return out
    w = max(1, min(width, (bottom - top) // 2, (right - left) // 2))
    c = np.asarray(color, np.float32)
    out[top:top + w, left:right] = c
    out[bottom - w:bottom, left:right] = c
    out[top:bottom, left:left + w] = c
    out[top:bottom, right - w:right] = c
    return out
