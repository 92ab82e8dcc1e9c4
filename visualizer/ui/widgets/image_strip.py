"""A horizontal, scrollable strip of small labelled images (or short texts), one per
item, with arrows between them, a highlighted item and a click signal: e.g. one sample
seen at every layer of a network, in forward order."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from visualizer.ui.widgets.colormaps import colormap

HIGHLIGHT_CSS = "rgb(255, 200, 0)"


def colorize(values: np.ndarray, levels: tuple[float, float], cmap: str) -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8 through a named colour map; NaN becomes white."""
    lo, hi = levels
    span = hi - lo if hi > lo else 1.0
    x = np.clip((np.asarray(values, np.float32) - lo) / span, 0.0, 1.0)
    nan = ~np.isfinite(x)
    rgb = colormap(cmap).map(np.where(nan, 0.0, x).ravel(), mode="byte")[:, :3]
    rgb = rgb.reshape(*x.shape, 3).astype(np.uint8)
    rgb[nan] = 255
    return rgb


def to_pixmap(rgb: np.ndarray, max_w: int, max_h: int) -> QPixmap:
    """(h, w, 3) uint8 -> a pixmap scaled (nearest neighbour, aspect kept) to fit max_w x max_h."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(max_w, max_h, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)


class StripItem(QFrame):
    """One labelled cell of the strip: an image or a short text above a small title."""

    clicked = Signal()

    def __init__(self, title: str, width: int, image_height: int) -> None:
        super().__init__()
        self.image_w, self.image_h = width - 6, image_height
        self.setFixedWidth(width)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedHeight(image_height)
        self.title = QLabel(title.replace(".", ".\u200b").replace("_", "_\u200b"))
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        font = self.title.font()
        font.setPointSizeF(7.0)
        self.title.setFont(font)
        self.image.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self.image)
        layout.addWidget(self.title)
        self.highlighted = True
        self.set_highlighted(False)

    def set_image(self, rgb: np.ndarray) -> None:
        self.image.setPixmap(to_pixmap(rgb, self.image_w, self.image_h))

    def set_text(self, text: str) -> None:
        self.image.setPixmap(QPixmap())
        self.image.setText(text)

    def set_highlighted(self, on: bool) -> None:
        if on == self.highlighted:
            return  # restyling is costly: only on change
        self.highlighted = on
        border = f"3px solid {HIGHLIGHT_CSS}" if on else "3px solid transparent"
        self.setStyleSheet(f"StripItem {{ border: {border}; border-radius: 3px; }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


class ImageStrip(QScrollArea):
    """Items in a row, left to right, joined by arrows; scrolls sideways when they do
    not fit. ``item_clicked(index)`` fires when an item is clicked."""

    item_clicked = Signal(int)

    def __init__(self, item_width: int = 58, image_height: int = 46) -> None:
        super().__init__()
        self.item_width, self.image_height = item_width, image_height
        self.items: list[StripItem] = []
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._content = QWidget()
        self._row = QHBoxLayout(self._content)
        self._row.setContentsMargins(2, 2, 2, 2)
        self._row.setSpacing(0)
        self._visible: int | None = None
        self.setWidget(self._content)

    def set_items(self, titles: list[str]) -> None:
        """Replace the items (call when the set of items changes, not per frame)."""
        while self._row.count():
            w = self._row.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.items = []
        self._visible = None
        for i, title in enumerate(titles):
            if i:
                self._row.addWidget(self._arrow())
            item = StripItem(title, self.item_width, self.image_height)
            item.setToolTip(title)
            item.clicked.connect(lambda i=i: self.item_clicked.emit(i))
            self._row.addWidget(item, 0, Qt.AlignmentFlag.AlignTop)
            self.items.append(item)
        self._row.addStretch(1)

    def set_highlight(self, index: int | None) -> None:
        for i, item in enumerate(self.items):
            item.set_highlighted(i == index)
        if index is not None and 0 <= index < len(self.items) and index != self._visible:
            self._visible = index
            self.ensureWidgetVisible(self.items[index], 30, 0)

    def _arrow(self) -> QLabel:
        return arrow_label(self.image_height)


def arrow_label(image_height: int) -> QLabel:
    """The grey arrow drawn between strip items, level with the middle of their images."""
    arrow = QLabel("→")
    arrow.setStyleSheet("color: #888;")
    arrow.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
    arrow.setContentsMargins(0, image_height // 2 - 4, 0, 0)
    arrow.setFixedWidth(12)
    return arrow
