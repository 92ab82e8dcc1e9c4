"""A clickable colour key for layers coloured by depth (early light, late dark)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from visualizer.ui.widgets.colormaps import SEQUENTIAL, colormap
from visualizer.ui.widgets.plots import HIGHLIGHT

# Part of the sequential map used for depth: light green (first layer) to dark purple (last);
# the palest yellow end is left out so early curves stay visible on white.
DEPTH_RANGE = (0.82, 0.0)


def depth_colors(n: int) -> list[tuple[int, int, int]]:
    """``n`` colours along the sequential map, first layer lightest, last darkest."""
    if n <= 0:
        return []
    pos = np.linspace(DEPTH_RANGE[0], DEPTH_RANGE[1], n) if n > 1 else np.array([DEPTH_RANGE[1]])
    rgba = colormap(SEQUENTIAL).map(pos, mode="byte")
    return [tuple(int(c) for c in row[:3]) for row in np.atleast_2d(rgba)]


class DepthColorKey(QWidget):
    """A vertical strip of one colour block per layer, labelled with the layer names
    (first layer on top); the selected layer is boxed, clicking a block emits its index."""

    layer_clicked = Signal(int)

    def __init__(self, title: str = "layer (depth)") -> None:
        super().__init__()
        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.view.addPlot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.showAxis("right")
        self.plot.setLabel("right", title)
        self.plot.getAxis("right").setStyle(tickLength=0, tickFont=_small_font())
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.box = QGraphicsRectItem()
        pen = QPen(HIGHLIGHT, 0)
        pen.setCosmetic(True)
        pen.setWidth(3)
        self.box.setPen(pen)
        self.box.setVisible(False)
        self.plot.addItem(self.box)
        self.names: list[str] = []
        self.view.scene().sigMouseClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_layers(self, names: list[str]) -> list[tuple[int, int, int]]:
        """Show one block per name; returns their colours (same as :func:`depth_colors`)."""
        self.names = list(names)
        colors = depth_colors(len(names))
        if not names:
            self.image.clear()
            self.box.setVisible(False)
            self.plot.getAxis("right").setTicks([[]])
            return colors
        rgb = np.array(colors, dtype=np.ubyte).reshape(len(names), 1, 3)
        self.image.setImage(rgb, levels=(0, 255), autoLevels=False)
        self.image.setRect(QRectF(0, 0, 1, len(names)))
        self.plot.setXRange(0, 1, padding=0)
        self.plot.setYRange(0, len(names), padding=0.01)
        self.set_highlight(None)
        return colors

    def set_highlight(self, index: int | None) -> None:
        """Box the block ``index`` and always label it (other names only where they fit)."""
        n = len(self.names)
        major = {0, n - 1} if n else set()
        if index is not None and 0 <= index < n:
            self.box.setRect(QRectF(0.02, index + 0.04, 0.96, 0.92))
            self.box.setVisible(True)
            major.add(index)
        else:
            self.box.setVisible(False)
        ticks = [(i + 0.5, name) for i, name in enumerate(self.names)]
        self.plot.getAxis("right").setTicks([[t for i, t in enumerate(ticks) if i in major],
                                             [t for i, t in enumerate(ticks) if i not in major]])

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.names:
            return
        y = self.plot.vb.mapSceneToView(event.scenePos()).y()
        if 0 <= y < len(self.names):
            self.layer_clicked.emit(int(y))


def _small_font() -> QFont:
    font = QFont()
    font.setPointSize(8)
    return font
