"""Sparklines: a small line of values over steps, painted straight into a table cell.

A table model hands a :class:`Sparkline` (steps, values, scale) to the view under
``SPARKLINE_ROLE``; :class:`SparklineDelegate` paints it at a fixed height. Updating
a cell is then a ``dataChanged`` on that cell: no widget, pixmap or plot per cell.
Each line is scaled to its own range (a trend, not a comparison between rows); the
newest value is written at the right end so the line still says how big it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pyqtgraph.functions import arrayToQPath
from PySide6.QtCore import QModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

SPARKLINE_HEIGHT = 22  # pixels; rows holding sparklines are this tall
SPARKLINE_ROLE = int(Qt.ItemDataRole.UserRole) + 17
MAX_POINTS = 96  # min/max decimated to about twice the pixel width of a line


@dataclass
class Sparkline:
    """What one cell draws: ``values`` at ``steps``, on a log10 scale if ``log``."""

    steps: np.ndarray
    values: np.ndarray
    log: bool = False
    color: tuple[int, int, int] = (31, 119, 180)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def latest(self) -> float:
        """The newest finite value (NaN if none)."""
        finite = np.flatnonzero(self._valid())
        return float(self.values[finite[-1]]) if finite.size else math.nan

    def _valid(self) -> np.ndarray:
        v = np.asarray(self.values, dtype=np.float64)
        ok = np.isfinite(v)
        return ok & (v > 0) if self.log else ok

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the finite points, y in log10 units when ``log``, at most MAX_POINTS."""
        if "points" not in self._cache:
            self._cache["points"] = self._points()
        return self._cache["points"]

    def pixmap(self, width: int, height: int, ratio: float = 1.0) -> QPixmap:
        """This line painted once per size and reused (cells are repainted far more
        often than their values change)."""
        key = (width, height, ratio)
        if self._cache.get("pixmap_key") != key:
            self._cache["pixmap"] = sparkline_pixmap(self, width, height, label=True, ratio=ratio)
            self._cache["pixmap_key"] = key
        return self._cache["pixmap"]

    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        ok = self._valid()
        x = np.asarray(self.steps, dtype=np.float64)[ok]
        y = np.asarray(self.values, dtype=np.float64)[ok]
        if self.log:
            y = np.log10(y)
        if x.size > MAX_POINTS:
            x, y = min_max_decimate(x, y, MAX_POINTS // 2)
        return x, y


def min_max_decimate(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest value of each of ``bins`` runs of points, so spikes survive,
    followed by the newest point itself."""
    starts = np.unique(np.linspace(0, x.size - 1, bins + 1).astype(np.int64)[:-1])
    lo, hi = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    bx = x[starts]
    return np.append(np.repeat(bx, 2), x[-1]), np.append(np.column_stack([lo, hi]).ravel(), y[-1])


def format_value(value: float) -> str:
    """Short number for a cell: 3 significant digits, scientific for tiny/huge values."""
    if not math.isfinite(value):
        return "–"
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.1e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{value:.3g}"


def paint_sparkline(painter: QPainter, rect: QRect | QRectF, line: Sparkline, label: bool = True) -> None:
    """Draw ``line`` inside ``rect`` (the newest value as text at the right if ``label``)."""
    rect = QRectF(rect).adjusted(3, 3, -3, -3)
    x, y = line.points()
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    if label:
        font = QFont(painter.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        text = format_value(line.latest)
        width = painter.fontMetrics().horizontalAdvance(max(text, "8.8e-8", key=len)) + 3
        if rect.width() > 2 * width:
            painter.setPen(QColor(40, 40, 40))
            painter.drawText(QRectF(rect.right() - width, rect.top(), width, rect.height()),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
            rect.setRight(rect.right() - width - 2)
    if x.size == 0:
        painter.restore()
        return
    color = QColor(*line.color)
    if x.size == 1 or x[-1] == x[0]:
        px = np.array([rect.right()])
        py = np.array([rect.center().y()])
    else:
        lo, hi = float(y.min()), float(y.max())
        span = hi - lo
        if span <= 1e-12 * max(1.0, abs(hi)):  # flat line in the middle
            py = np.full(y.shape, rect.center().y())
        else:
            py = rect.bottom() - (y - lo) / span * rect.height()
        px = rect.left() + (x - x[0]) / (x[-1] - x[0]) * rect.width()
        path = arrayToQPath(px, py)  # vectorised: no Python loop per point
        pen = QPen(color, 1.3)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawPath(path)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(QPointF(px[-1], py[-1]), 2.2, 2.2)  # the newest value
    painter.restore()


def sparkline_pixmap(line: Sparkline, width: int = 90, height: int = SPARKLINE_HEIGHT, label: bool = False,
                     ratio: float | None = None) -> QPixmap:
    """``line`` painted on a transparent pixmap (for icons, labels, or a cell's cache)."""
    if ratio is None:
        ratio = QApplication.instance().devicePixelRatio() if QApplication.instance() else 1.0
    pixmap = QPixmap(int(width * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        paint_sparkline(painter, QRectF(0, 0, width, height), line, label)
    finally:
        painter.end()
    return pixmap


class SparklineDelegate(QStyledItemDelegate):
    """Paints the :class:`Sparkline` a model returns for ``SPARKLINE_ROLE`` (fixed height);
    cells without one fall back to the ordinary text painting."""

    def __init__(self, parent: QWidget | None = None, width: int = 110) -> None:
        super().__init__(parent)
        self.width = width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        line = index.data(SPARKLINE_ROLE)
        if not isinstance(line, Sparkline):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        rect = opt.rect
        painter.drawPixmap(rect.topLeft(), line.pixmap(rect.width(), rect.height(), painter.device().devicePixelRatioF()))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        if isinstance(index.data(SPARKLINE_ROLE), Sparkline):
            return QSize(self.width, SPARKLINE_HEIGHT)
        return super().sizeHint(option, index)
