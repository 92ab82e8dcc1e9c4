"""pyqtgraph building blocks shared by the panels: image grids, heat maps, line plots."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from visualizer.ui.widgets.colormaps import SEQUENTIAL, colormap
from visualizer.ui.widgets.tiles import tile, tile_at

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")
HIGHLIGHT = QColor(255, 200, 0)


def layout_widget() -> pg.GraphicsLayoutWidget:
    """A white pyqtgraph layout with thin margins (the panels' plots and image grids)."""
    view = pg.GraphicsLayoutWidget()
    view.ci.setContentsMargins(2, 2, 2, 2)
    return view


class ImageGrid(QWidget):
    """Many same-sized images as one tiled image item, with a colour bar and a
    highlighted tile; clicking a tile emits its index."""

    tile_clicked = Signal(int)

    def __init__(self, cmap: str = SEQUENTIAL, colorbar: bool = True, label: str = "") -> None:
        super().__init__()
        self.view = layout_widget()
        self.plot = self.view.addPlot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.colorbar = None
        if colorbar:
            self.colorbar = pg.ColorBarItem(colorMap=colormap(cmap), interactive=False, width=12, label=label)
            self.colorbar.setImageItem(self.image, insert_in=self.plot)
        else:
            self.image.setColorMap(colormap(cmap))
        self.box = QGraphicsRectItem()
        pen = QPen(HIGHLIGHT, 0)
        pen.setCosmetic(True)
        pen.setWidth(3)
        self.box.setPen(pen)
        self.box.setVisible(False)
        self.plot.addItem(self.box)
        self._geom = (0, 0, 0, 0, 1)  # h, w, rows, cols, pad
        self._count = 0
        self.view.scene().sigMouseClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_tiles(self, images: np.ndarray, levels: tuple[float, float], cols: int | None = None, pad: int = 1) -> np.ndarray:
        """Show (N, h, w) or (N, h, w, 3) images; returns the tiled array shown."""
        if images.shape[0] == 0:
            self.image.clear()
            self._count = 0
            self.box.setVisible(False)
            return images
        tiled, rows, cols = tile(images, cols, pad)
        if tiled.ndim == 3:  # RGB: NaN gaps become white
            tiled = np.nan_to_num(tiled, nan=1.0)
        refit = self.image.image is None or self.image.image.shape[:2] != tiled.shape[:2]
        if refit:
            self.box.setVisible(False)  # an old highlight must not widen the new view range
        self.image.setImage(tiled, levels=levels, autoLevels=False)
        if self.colorbar is not None and tiled.ndim == 2:
            self.colorbar.setLevels(levels)
        self._geom = (images.shape[1], images.shape[2], rows, cols, pad)
        self._count = images.shape[0]
        if refit:
            self.plot.vb.setRange(xRange=(-0.5, tiled.shape[1] - 0.5), yRange=(-0.5, tiled.shape[0] - 0.5), padding=0.02)
        return tiled

    def set_highlight(self, index: int | None) -> None:
        h, w, rows, cols, pad = self._geom
        if index is None or index < 0 or index >= self._count or cols == 0:
            self.box.setVisible(False)
            return
        r, c = divmod(index, cols)
        self.box.setRect(QRectF(c * (w + pad) - 0.5, r * (h + pad) - 0.5, w + 1, h + 1))
        self.box.setVisible(True)

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._count == 0:
            return
        pos: QPointF = self.plot.vb.mapSceneToView(event.scenePos())
        h, w, rows, cols, pad = self._geom
        index = tile_at(pos.x(), pos.y(), h, w, rows, cols, pad)
        if index is not None and index < self._count:
            self.tile_clicked.emit(index)


class HeatmapView(QWidget):
    """One image on real axes (e.g. steps by histogram bins) with a labelled colour bar."""

    clicked = Signal(float, float)

    def __init__(self, cmap: str = SEQUENTIAL, x_label: str = "", y_label: str = "", bar_label: str = "") -> None:
        super().__init__()
        self.view = layout_widget()
        self.plot = self.view.addPlot()
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=colormap(cmap), interactive=False, width=12, label=bar_label)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_image(self, image: np.ndarray, levels: tuple[float, float], rect: tuple[float, float, float, float] | None = None) -> None:
        """Show a (rows, cols) image; ``rect`` = (x, y, width, height) in axis units."""
        self.image.setImage(image, levels=levels, autoLevels=False)
        self.colorbar.setLevels(levels)
        if rect is not None:
            self.image.setRect(QRectF(*rect))

    def _clicked(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            pos = self.plot.vb.mapSceneToView(event.scenePos())
            self.clicked.emit(pos.x(), pos.y())


LEGEND_CORNERS = {"top right": (-8, 8), "bottom right": (-8, -8)}  # pyqtgraph offsets: negative = from the far side


def line_plot(x_label: str = "", y_label: str = "", log_y: bool = False, legend: bool = True,
              legend_corner: str = "top right") -> pg.PlotWidget:
    """A plot widget with labelled axes, grid, optional log y axis and a legend in ``legend_corner``
    (on a light backing, so its names stay readable over a curve); curves added to it should use
    ``clipToView`` and ``autoDownsample``."""
    widget = pg.PlotWidget()
    item = widget.getPlotItem()
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.getAxis("bottom").enableAutoSIPrefix(False)  # "step (x0.001)" helps nobody
    item.showGrid(x=True, y=True, alpha=0.25)
    item.setLogMode(y=log_y)
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.setMenuEnabled(False)
    if legend:
        item.addLegend(offset=LEGEND_CORNERS[legend_corner], labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
    return widget
