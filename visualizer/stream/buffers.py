"""Preallocated ring buffers for time series; nothing here grows with the run length."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


class RingBuffer:
    """Fixed-capacity ring of rows of a fixed shape; ``view()`` returns them oldest first."""

    def __init__(self, capacity: int, row_shape: tuple[int, ...] = (), dtype: np.dtype | type = np.float64) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._data = np.zeros((capacity, *row_shape), dtype=dtype)
        self._next = 0
        self._count = 0

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        self._next = self._count = 0

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """Append rows; returns the rows pushed out of the ring (oldest first)."""
        rows = np.asarray(rows, dtype=self._data.dtype).reshape(-1, *self._data.shape[1:])
        n, cap = rows.shape[0], self.capacity
        overflow = max(0, self._count + n - cap)
        evicted = self.view()[:overflow].copy() if overflow else self._data[:0].copy()
        if n >= cap:
            if n > cap:
                evicted = np.concatenate([evicted, rows[: n - cap]])
            rows = rows[n - cap :]
            n = cap
        end = self._next + n
        if end <= cap:
            self._data[self._next : end] = rows
        else:
            split = cap - self._next
            self._data[self._next :] = rows[:split]
            self._data[: n - split] = rows[split:]
        self._next = end % cap
        self._count = min(cap, self._count + n)
        return evicted

    def append(self, row: np.ndarray | float) -> None:
        self.extend(np.asarray(row)[None])

    def view(self) -> np.ndarray:
        """Rows oldest first (a copy only when the ring has wrapped)."""
        if self._count < self.capacity:
            return self._data[: self._count]
        return np.concatenate([self._data[self._next :], self._data[: self._next]])

    def last(self) -> np.ndarray | None:
        return None if self._count == 0 else self._data[(self._next - 1) % self.capacity]


class SeriesBuffer:
    """Step-indexed time series in two tiers: recent points at full resolution and,
    behind them, older points averaged in groups of ``coarse_factor``.

    Memory is fixed at construction: ``2 * capacity`` rows, however long the run.
    """

    def __init__(self, columns: Sequence[str], capacity: int = 4096, coarse_factor: int = 16) -> None:
        self.columns = list(columns)
        self._width = len(self.columns) + 1  # step column first
        self._fine = RingBuffer(capacity, (self._width,))
        self._coarse = RingBuffer(capacity, (self._width,))
        self._factor = max(1, int(coarse_factor))
        self._pending = np.zeros((0, self._width))

    def __len__(self) -> int:
        return len(self._fine) + len(self._coarse)

    def clear(self) -> None:
        self._fine.clear()
        self._coarse.clear()
        self._pending = np.zeros((0, self._width))

    def extend(self, steps: np.ndarray, values: dict[str, np.ndarray]) -> None:
        steps = np.asarray(steps, dtype=np.float64).reshape(-1)
        if steps.size == 0:
            return
        rows = np.empty((steps.size, self._width))
        rows[:, 0] = steps
        for i, name in enumerate(self.columns, start=1):
            col = values.get(name)
            rows[:, i] = np.nan if col is None else np.asarray(col, dtype=np.float64).reshape(-1)
        evicted = self._fine.extend(rows)
        if evicted.shape[0]:
            self._pending = np.concatenate([self._pending, evicted])
            whole = (self._pending.shape[0] // self._factor) * self._factor
            if whole:
                groups = self._pending[:whole].reshape(-1, self._factor, self._width)
                with warnings.catch_warnings():  # all-NaN groups are expected
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._coarse.extend(np.nanmean(groups, axis=1))
                self._pending = self._pending[whole:]

    def append(self, step: int, **values: float) -> None:
        self.extend(np.array([step]), {k: np.array([v]) for k, v in values.items()})

    def keep_until(self, step: float) -> None:
        """Drop the points after ``step`` (coarse groups that straddle it are dropped whole)."""
        fine, coarse = self._fine.view(), self._coarse.view()
        if (fine.shape[0] == 0 or fine[:, 0].max() <= step) and self._pending.shape[0] == 0:
            return  # nothing after it (rows may be out of order just after a rollback)
        kept_fine, kept_coarse = fine[fine[:, 0] <= step].copy(), coarse[coarse[:, 0] <= step].copy()
        self._pending = self._pending[self._pending[:, 0] <= step]
        self._fine.clear()
        self._coarse.clear()
        self._coarse.extend(kept_coarse)
        self._fine.extend(kept_fine)

    def data(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(steps, {column: values}) oldest first, coarse tier then fine tier."""
        rows = np.concatenate([self._coarse.view(), self._pending, self._fine.view()])
        return rows[:, 0], {name: rows[:, i] for i, name in enumerate(self.columns, start=1)}

