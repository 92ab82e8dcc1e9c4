"""Turn a drawing into a model input, preprocessed like scikit-learn's digits.

scikit-learn's 8x8 digits come from 32x32 binary bitmaps divided into non-overlapping
4x4 blocks; each value is the number of inked pixels in its block (0-16), and the
dataset here scales them to [0, 1] by dividing by 16. A drawing is reduced the same way:
ink (H, W) in [0, 1] -> 32x32 bitmap (mean ink per cell >= 0.5, optionally after fitting
the ink's bounding box into the square, as NIST normalised the size) -> block counts.
"""
from __future__ import annotations

import numpy as np

BITMAP = 32
BLOCK = 4


def ink_to_bitmap(ink: np.ndarray, fit: bool = True, size: int = BITMAP) -> np.ndarray:
    """(size, size) bool bitmap from ink (H, W) in [0, 1], H and W multiples of ``size``.

    ``fit``: crop to the ink's bounding box, pad it to a square around its centre and scale it
    to fill the bitmap, so a small or off-centre drawing looks like the dataset's digits.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if fit and (ink > 0.5).any():
        rows, cols = np.nonzero(ink > 0.5)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        side = max(bottom - top, right - left)
        cy, cx = (top + bottom) / 2, (left + right) / 2
        y0, x0 = int(round(cy - side / 2)), int(round(cx - side / 2))
        square = np.zeros((side, side), np.float32)
        ys, xs = slice(max(y0, 0), min(y0 + side, ink.shape[0])), slice(max(x0, 0), min(x0 + side, ink.shape[1]))
        square[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0] = ink[ys, xs]
        fine = size * 4  # nearest-neighbour resampling to a fine grid, then cell means
        idx = (np.arange(fine) * side / fine).astype(int)
        ink = square[np.ix_(idx, idx)]
    h, w = ink.shape
    if h % size or w % size:
        raise ValueError(f"ink of shape {ink.shape} is not a multiple of {size}x{size}")
    cells = ink.reshape(size, h // size, size, w // size).mean(axis=(1, 3))
    return cells >= 0.5


def bitmap_to_digit(bitmap: np.ndarray) -> np.ndarray:
    """(8, 8) float32 counts 0-16 of inked pixels in each 4x4 block of a 32x32 bitmap."""
    b = np.asarray(bitmap, dtype=np.float32)
    if b.shape != (BITMAP, BITMAP):
        raise ValueError(f"expected a {BITMAP}x{BITMAP} bitmap, got {b.shape}")
    n = BITMAP // BLOCK
    return b.reshape(n, BLOCK, n, BLOCK).sum(axis=(1, 3))


def digit_to_bitmap(counts: np.ndarray) -> np.ndarray:
    """A 32x32 bitmap whose 4x4 block counts are ``counts`` (8, 8) (the inverse of
    :func:`bitmap_to_digit`; pixels fill each block row by row). Used to test the pad."""
    counts = np.asarray(np.rint(counts), dtype=int).clip(0, BLOCK * BLOCK)
    out = np.zeros((BITMAP, BITMAP), bool)
    for (i, j), c in np.ndenumerate(counts):
        block = np.zeros(BLOCK * BLOCK, bool)
        block[:c] = True
        out[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = block.reshape(BLOCK, BLOCK)
    return out


def drawing_to_input(ink: np.ndarray, input_shape: tuple[int, ...], fit: bool = True) -> np.ndarray:
    """Model input (1, *input_shape) in [0, 1] from ink: digits preprocessing for 1x8x8 inputs,
    for other one-channel H x W inputs the ink averaged down to H x W."""
    if len(input_shape) != 3 or input_shape[0] != 1:
        raise ValueError(f"a drawing can only feed a one-channel image input, not {tuple(input_shape)}")
    _, h, w = input_shape
    if (h, w) == (BITMAP // BLOCK, BITMAP // BLOCK):
        values = bitmap_to_digit(ink_to_bitmap(ink, fit)) / 16.0
    else:
        ink = np.asarray(ink, np.float32)
        if ink.shape[0] % h or ink.shape[1] % w:
            raise ValueError(f"the pad's size {ink.shape} is not a multiple of the input size {h}x{w}")
        values = ink.reshape(h, ink.shape[0] // h, w, ink.shape[1] // w).mean(axis=(1, 3))
    return values.astype(np.float32)[None, None]
