"""Many curves in one graphics item: the fast path for plots with dozens of lines.

A plot with one ``PlotDataItem`` per line pays pyqtgraph's per-item costs (data checks,
bounds, auto-range, a paint call each) for every line: 40 layers of a Transformer cost
about 40 ms a frame. This item keeps every curve's path, computes the bounds once with
numpy and paints all paths in one call. Long curves are thinned to their per-bin minimum
and maximum, so spikes stay visible; short ones get dots on their points (a single point
draws no line). Clicking near a curve (or hovering) names it.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter, QPainterPath, QPen

MAX_POINTS = 2048  # per curve after thinning: more than a plot is wide, in pixels
PICK_PX = 6.0  # how near (in pixels) a click or hover must be to name a curve
DOT_PX = 2.5  # radius of the dots on short curves


def peak_thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points: each bin's lowest and highest value (NaN gaps kept)."""
    n = len(x)
    if n <= max_points:
        return x, y
    bins = max(1, max_points // 2)
    size = n // bins
    cut = bins * size
    xb, yb = x[:cut].reshape(bins, size), y[:cut].reshape(bins, size)
    lo, hi = np.fmin.reduce(yb, axis=1), np.fmax.reduce(yb, axis=1)  # NaN only where a bin is all NaN
    xs = np.stack([xb[:, 0], xb[:, -1]], 1).ravel()
    ys = np.stack([lo, hi], 1).ravel()
    return np.concatenate([xs, x[cut:]]), np.concatenate([ys, y[cut:]])


class MultiCurveItem(pg.GraphicsObject):
    """Named curves sharing one item; ``log_y`` draws log10 of the values (others: gaps);
    curves with fewer than ``dots_below`` points also get a dot on each point."""

    clicked = Signal(str)

    def __init__(self, log_y: bool = False, dots_below: int = 0) -> None:
        super().__init__()
        self.log_y, self.dots_below = log_y, dots_below
        self._data: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # as given
        self._drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # mapped and thinned
        self._paths: dict[str, QPainterPath] = {}
        self._dots: dict[str, list[QPointF]] = {}  # the finite points of short curves
        self._pens: dict[str, QPen] = {}
        self._top: str | None = None
        self._bounds: tuple[float, float, float, float] | None = None
        self.setAcceptHoverEvents(True)

    # ------------------------------------------------------------------ data
    def set_curves(self, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace every curve: name -> (x, y)."""
        self.prepareGeometryChange()
        self._data, self._drawn, self._paths, self._dots = {}, {}, {}, {}
        lows, highs = [], []
        for name, (x, y) in curves.items():
            x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            self._data[name] = (x, y)
            if self.log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.log10(np.where(y > 0, y, np.nan))
            x, y = peak_thin(x, y)
            self._drawn[name] = (x, y)
            finite = np.isfinite(x) & np.isfinite(y)
            if finite.any():
                lows.append((x[finite].min(), y[finite].min()))
                highs.append((x[finite].max(), y[finite].max()))
                self._paths[name] = pg.arrayToQPath(x, y, connect="finite")
                if finite.sum() < self.dots_below:
                    self._dots[name] = [QPointF(a, b) for a, b in zip(x[finite], y[finite])]
        if lows:
            (x0, y0), (x1, y1) = np.min(lows, 0), np.max(highs, 0)
            self._bounds = (float(x0), float(x1), float(y0), float(y1))
        else:
            self._bounds = None
        self.informViewBoundsChanged()
        self.update()

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The curve's (x, y) as given (empty when unknown)."""
        return self._data.get(name, (np.zeros(0), np.zeros(0)))

    def set_pen(self, name: str, pen: QPen) -> None:
        self._pens[name] = pen
        self.update()

    def pen(self, name: str) -> QPen | None:
        return self._pens.get(name)

    def raise_curve(self, name: str | None) -> None:
        """Draw this curve over the others."""
        self._top = name
        self.update()

    # ------------------------------------------------------------------ geometry
    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: object = None) -> tuple[float | None, float | None]:
        if self._bounds is None:
            return None, None
        return self._bounds[2 * ax], self._bounds[2 * ax + 1]

    def boundingRect(self) -> QRectF:
        if self._bounds is None:
            return QRectF()
        x0, x1, y0, y1 = self._bounds
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def paint(self, painter: QPainter, *args: object) -> None:
        names = [n for n in self._paths if n != self._top]
        if self._top in self._paths:
            names.append(self._top)
        to_device = painter.transform()
        for name in names:
            pen = self._pens.get(name, pg.mkPen("k"))
            painter.setPen(pen)
            painter.drawPath(self._paths[name])
            if name in self._dots:
                # in device pixels: under the plot's unequal x and y scales an ellipse is filled as a
                # transformed path, 8x slower (240 dots took a Transformer's gradient plot 10 ms, not 1.3)
                points = [to_device.map(point) for point in self._dots[name]]
                painter.save()
                painter.resetTransform()
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(pen.color())
                for point in points:
                    painter.drawEllipse(point, DOT_PX, DOT_PX)
                painter.restore()

    # ------------------------------------------------------------------ picking
    def nearest(self, pos: QPointF, within_px: float = PICK_PX) -> str | None:
        """The curve passing nearest to ``pos`` (item coordinates), if within ``within_px`` pixels."""
        px_w, px_h = self.pixelWidth(), self.pixelHeight()
        if not px_w or not px_h:
            return None
        best, best_d = None, within_px
        for name, (x, y) in self._drawn.items():
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                continue
            xs, ys = x[ok], y[ok]
            if len(xs) == 1 or not xs[0] <= pos.x() <= xs[-1]:  # off its span: distance to its nearest point
                d = float(np.min(np.hypot((xs - pos.x()) / px_w, (ys - pos.y()) / px_h)))
            else:
                d = abs(float(np.interp(pos.x(), xs, ys)) - pos.y()) / px_h
            if d <= best_d:
                best, best_d = name, d
        return best

    def mouseClickEvent(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        name = self.nearest(ev.pos())
        if name is None:
            ev.ignore()
            return
        ev.accept()
        self.clicked.emit(name)

    def hoverEvent(self, ev: object) -> None:
        if ev.isExit():
            self.setToolTip("")
            return
        name = self.nearest(ev.pos())
        self.setToolTip(name or "")
