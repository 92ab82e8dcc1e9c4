"""A heat map with token symbols (or numbers) on its axes and the value under the mouse
shown in its title: an attention map (queries x keys) or a state over time steps."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QVBoxLayout, QWidget

from visualizer.ui.widgets.category_axis import CategoryAxis
from visualizer.ui.widgets import plots as _plots  # noqa: F401  (pyqtgraph's theme and row-major images)
from visualizer.ui.widgets.colormaps import SEQUENTIAL, colormap


class TokenHeatmap(QWidget):
    """One (rows, cols) image; rows run top to bottom. ``x_labels``/``y_labels`` name the
    columns/rows (``None``: numbered). Hovering shows "row, column: value" under the title."""

    def __init__(self, cmap: str = SEQUENTIAL, x_label: str = "", y_label: str = "", bar_label: str = "",
                 value_name: str = "value", x_angle: float = 0.0) -> None:
        super().__init__()
        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.x_axis = CategoryAxis("bottom", angle=x_angle, offset=0.5)  # x_angle: slanted names fit side by side
        self.y_axis = CategoryAxis("left", offset=0.5)
        self.plot = self.view.addPlot(axisItems={"bottom": self.x_axis, "left": self.y_axis})
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=colormap(cmap), interactive=False, width=12, label=bar_label)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.value_name = value_name
        self.title = ""
        self.values = np.zeros((0, 0), np.float32)
        self.x_names: list[str] = []
        self.y_names: list[str] = []
        self.hover_text = ""
        self.view.scene().sigMouseMoved.connect(self._moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_map(self, values: np.ndarray, levels: tuple[float, float], x_labels: Sequence[str] | None = None,
                y_labels: Sequence[str] | None = None, title: str = "") -> None:
        """Show ``values`` (rows, cols) on ``levels``; labels default to 0, 1, 2, ..."""
        values = np.asarray(values, np.float32)
        rows, cols = values.shape
        self.values = values
        self.x_names = list(x_labels) if x_labels is not None else [str(i) for i in range(cols)]
        self.y_names = list(y_labels) if y_labels is not None else [str(i) for i in range(rows)]
        resized = self.image.image is None or self.image.image.shape != values.shape
        self.image.setImage(values, levels=levels, autoLevels=False)
        self.colorbar.setLevels(levels)
        if resized:
            self.image.setRect(QRectF(0, 0, cols, rows))
            self.plot.vb.setRange(xRange=(0, cols), yRange=(0, rows), padding=0.0)
            self.x_axis.set_labels(self.x_names)
            self.y_axis.set_labels(self.y_names)
        elif self.x_axis.labels != self.x_names or self.y_axis.labels != self.y_names:
            self.x_axis.set_labels(self.x_names)
            self.y_axis.set_labels(self.y_names)
        self.title = title
        self.plot.setTitle(title, size="9pt")

    def value_at(self, row: int, col: int) -> str:
        """The hover text for one cell."""
        return (f"{self.y_names[row]} (row {row}) → {self.x_names[col]} (column {col}): "
                f"{self.value_name} {self.values[row, col]:.3f}")

    def _moved(self, pos) -> None:
        if self.values.size == 0 or not self.plot.sceneBoundingRect().contains(pos):
            return
        p = self.plot.vb.mapSceneToView(pos)
        row, col = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= row < self.values.shape[0] and 0 <= col < self.values.shape[1]:
            self.hover_text = self.value_at(row, col)
            self.plot.setTitle(f"{self.title}<br><span style='color:#333'>{self.hover_text}</span>", size="9pt")
        elif self.hover_text:
            self.hover_text = ""
            self.plot.setTitle(self.title, size="9pt")
