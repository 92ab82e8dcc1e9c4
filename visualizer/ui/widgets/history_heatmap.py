"""A rows x training-steps heat map of repeated analysis results (one column per run), and
the bounded buffer that keeps those columns."""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from visualizer.ui.widgets.category_axis import CategoryAxis
from visualizer.ui.widgets.colormaps import SEQUENTIAL
from visualizer.ui.widgets.plots import HIGHLIGHT, HeatmapView

MAX_IMAGE_COLUMNS = 600  # image columns when runs are unevenly spaced in steps


class StepHistory:
    """The last ``capacity`` result columns (one value per row) with the step of each.

    Steps only grow: a column for the step of the newest replaces it, and a step smaller
    than the newest (the weights were reset) starts a new history. So does a column with
    another number of rows.
    """

    def __init__(self, capacity: int = 200) -> None:
        self.capacity = capacity
        self._steps: deque[int] = deque(maxlen=capacity)
        self._columns: deque[np.ndarray] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._steps)

    def clear(self) -> None:
        self._steps.clear()
        self._columns.clear()

    def add(self, step: int, column: np.ndarray) -> None:
        column = np.asarray(column, dtype=np.float64).reshape(-1)
        if self._steps and (step < self._steps[-1] or len(column) != len(self._columns[-1])):
            self.clear()
        if self._steps and step == self._steps[-1]:
            self._columns[-1] = column
        else:
            self._steps.append(int(step))
            self._columns.append(column)

    def steps(self) -> np.ndarray:
        return np.asarray(self._steps, dtype=np.int64)

    def matrix(self) -> np.ndarray:
        """(rows, runs), oldest run first; (0, 0) when empty."""
        if not self._columns:
            return np.zeros((0, 0))
        return np.stack(list(self._columns), axis=1)


def step_columns(steps: np.ndarray, values: np.ndarray, max_columns: int = MAX_IMAGE_COLUMNS
                 ) -> tuple[np.ndarray, float, float]:
    """Lay (rows, runs) ``values`` taken at ``steps`` out as an image on a step axis: each
    run's column is centred on its step and reaches halfway to its neighbours. Returns the
    image, its left edge and its width in steps. Evenly spaced runs come back unchanged."""
    n = len(steps)
    s = steps.astype(np.float64)
    if n == 1:
        half = max(0.5, 0.02 * abs(s[0]))
        return values, s[0] - half, 2 * half
    gaps = np.diff(s)
    left, right = s[0] - gaps[0] / 2, s[-1] + gaps[-1] / 2
    if gaps.max() - gaps.min() <= 1e-6 * max(1.0, gaps.max()):
        return values, left, right - left
    finest = max(float(gaps.min()), (right - left) / max_columns)
    cols = int(min(max_columns, max(n, round((right - left) / finest))))
    centres = left + (np.arange(cols) + 0.5) * (right - left) / cols
    bounds = (s[1:] + s[:-1]) / 2  # where one run's column ends and the next begins
    return values[:, np.searchsorted(bounds, centres)], left, right - left


class HistoryHeatmap(QWidget):
    """Rows (layers, units) down, training steps across, one column per analysis run;
    the highlighted row is boxed, and clicking a cell emits its row."""

    row_clicked = Signal(int)

    def __init__(self, y_label: str, bar_label: str, x_label: str = "training step",
                 cmap: str = SEQUENTIAL, levels: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.view = HeatmapView(cmap, x_label, y_label, bar_label)
        self.plot = self.view.plot
        self.axis = CategoryAxis("left")
        self.plot.setAxisItems({"left": self.axis})
        self.plot.setLabel("left", y_label)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(False, False)
        self.levels = levels
        self.rows = 0
        self.boxes = []
        for color, width in ((QColor(0, 0, 0), 5), (HIGHLIGHT, 3)):  # a dark rim keeps it visible on yellow
            box = QGraphicsRectItem()
            pen = QPen(color, 0)
            pen.setCosmetic(True)
            pen.setWidth(width)
            box.setPen(pen)
            box.setVisible(False)
            box.setZValue(20 - width)  # the highlight colour on top of its rim
            self.plot.addItem(box, ignoreBounds=True)
            self.boxes.append(box)
        self._extent = (0.0, 1.0)
        self._highlight: int | None = None
        self.view.clicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_rows(self, names: Sequence[str]) -> None:
        """Name the rows (top to bottom); clears the image."""
        self.rows = len(names)
        self.axis.set_labels(names)
        self.view.image.clear()
        self.set_highlight(self._highlight)

    def set_history(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Show (rows, runs) ``values`` measured at ``steps`` (NaN: not measured)."""
        if values.size == 0 or len(steps) == 0:
            self.view.image.clear()
            return
        image, left, width = step_columns(np.asarray(steps), np.asarray(values, dtype=np.float64))
        single = [[(float(steps[0]), f"{int(steps[0]):,}")]] if len(steps) == 1 else None
        self.plot.getAxis("bottom").setTicks(single)  # one column: its step, not fractions of a step
        self.view.set_image(image.astype(np.float32), self.levels, rect=(left, 0, width, values.shape[0]))
        self._extent = (left, left + width)
        self.plot.setXRange(left, left + width, padding=0)
        self.plot.setYRange(0, values.shape[0], padding=0)
        self.set_highlight(self._highlight)

    def set_highlight(self, row: int | None) -> None:
        self._highlight = row
        ok = row is not None and 0 <= row < self.rows
        self.axis.set_highlight(row if ok else None)
        for box in self.boxes:
            box.setVisible(bool(ok) and self.view.image.image is not None)
            if ok:
                left, right = self._extent
                box.setRect(QRectF(left, row, right - left, 1))

    def _clicked(self, x: float, y: float) -> None:
        row = int(np.floor(y))
        left, right = self._extent
        if 0 <= row < self.rows and left <= x <= right:
            self.row_clicked.emit(row)
