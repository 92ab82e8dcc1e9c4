"""An axis labelled with names (layers, units) instead of numbers, thinned to what fits."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF


def abbreviate(name: str, max_chars: int = 18) -> str:
    """``name`` in at most ``max_chars`` characters: the parts of a dotted path before the
    last shortened to their initials and numbers ("stage2.block1.relu2" -> "s2.b1.relu2"),
    then, if still too long, cut keeping the end (the most specific part)."""
    if len(name) <= max_chars:
        return name
    parts = name.split(".")
    short = ".".join([re.sub(r"([A-Za-z])[A-Za-z_]*", r"\1", p) for p in parts[:-1]] + parts[-1:])
    return short if len(short) <= max_chars else "…" + short[-(max_chars - 1):]


def nice_stride(at_least: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … that is at least ``at_least``."""
    stride = 1
    while stride < at_least:
        stride = stride * 5 // 2 if str(stride)[0] == "2" else stride * 2
    return stride


def small_font(points: int = 8, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSize(points)
    font.setBold(bold)
    return font


class CategoryAxis(pg.AxisItem):
    """Names at the centres of unit-wide slots (slot ``i`` is centred on ``i + offset``).

    Only as many names as fit are drawn (every k-th); the highlighted one is always
    drawn, in bold. On a bottom axis, ``angle`` (degrees) rotates the names so long ones
    fit side by side; each ends at its tick and runs down to the left.
    """

    def __init__(self, orientation: str = "left", angle: float = 0.0, offset: float = 0.5,
                 max_chars: int = 18) -> None:
        super().__init__(orientation)
        self.labels: list[str] = []
        self.highlight: int | None = None
        self.angle = float(angle) if orientation in ("bottom", "top") else 0.0
        self.offset = offset
        self.max_chars = max_chars
        self.font = small_font()
        self.bold = small_font(bold=True)
        self.setStyle(tickFont=self.font)
        self.enableAutoSIPrefix(False)
        self._overflow = 0.0  # how far rotated names reach left of the axis

    # -- what to label -------------------------------------------------------------
    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = [abbreviate(str(s), self.max_chars) for s in labels]
        if self.angle:
            self._fit_rotated()
        elif self.orientation in ("left", "right"):
            self._fit_width()
        self.picture = None
        self.update()

    def set_highlight(self, index: int | None) -> None:
        self.highlight = index if index is not None and 0 <= index < len(self.labels) else None
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        n = len(self.labels)
        if n == 0:
            return []
        lo = max(0, math.ceil(min(minVal, maxVal) - self.offset - 1e-9))
        hi = min(n - 1, math.floor(max(minVal, maxVal) - self.offset + 1e-9))
        if hi < lo:
            return []
        metrics = QFontMetricsF(self.font)
        if self.angle:
            need = metrics.height() / math.sin(math.radians(self.angle))
        elif self.orientation in ("left", "right"):
            need = metrics.height()
        else:
            need = max(metrics.horizontalAdvance(s) for s in self.labels[lo:hi + 1]) + 6
        stride = nice_stride((hi - lo + 1) * need / max(1.0, float(size)))
        slots = [i for i in range(lo, hi + 1) if i % stride == 0]
        h = self.highlight
        if h is not None and lo <= h <= hi:
            slots = sorted({i for i in slots if abs(i - h) >= stride} | {h})
        return [(float(stride), [i + self.offset for i in slots])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        out = []
        for v in values:
            i = int(round(v - self.offset))
            out.append(self.labels[i] if 0 <= i < len(self.labels) else "")
        return out

    # -- drawing -------------------------------------------------------------------
    def _fit_rotated(self) -> None:
        metrics = QFontMetricsF(self.bold)
        widest = max((metrics.horizontalAdvance(s) for s in self.labels), default=0.0)
        a = math.radians(self.angle)
        reach = widest * math.sin(a) + metrics.height() * math.cos(a)
        label = self.label.boundingRect().height() * 0.8 if self.label.isVisible() else 0.0
        self.setHeight(int(math.ceil(reach + max(0, self.style["tickLength"]) + 6 + label)))
        first = metrics.horizontalAdvance(self.labels[0]) if self.labels else 0.0
        self._overflow = first * math.cos(a) + metrics.height()

    def _fit_width(self) -> None:
        metrics = QFontMetricsF(self.bold)
        widest = max((metrics.horizontalAdvance(s) for s in self.labels), default=0.0)
        self.textWidth = int(math.ceil(widest)) + 2  # room for every name from the first paint on
        self._updateWidth()

    def boundingRect(self):  # noqa: N802
        rect = super().boundingRect()
        return rect.adjusted(-self._overflow, 0, 0, 0) if self.angle else rect

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802
        """Draw the names ourselves: rotated on a rotated axis, the highlighted one bold."""
        super().drawPicture(p, axisSpec, tickSpecs, [])
        p.setPen(self.textPen())
        p.setClipping(False)
        h = self.highlight
        if not self.angle:
            for rect, flags, text in textSpecs:
                bold = h is not None and text == self.labels[h] and self._is_highlight(rect)
                p.setFont(self.bold if bold else self.font)
                p.drawText(rect, int(flags), text)
            return
        view = self.linkedView()
        if view is None:
            return
        top = max(0, self.style["tickLength"]) + 3
        values = self.tickValues(*self.range, self.width())
        for v in (values[0][1] if values else []):
            x = self.mapFromScene(view.mapViewToScene(QPointF(v, 0))).x()
            i = int(round(v - self.offset))
            text = self.labels[i]
            font = self.bold if i == h else self.font
            p.setFont(font)
            metrics = QFontMetricsF(font)
            w, hh = metrics.horizontalAdvance(text) + 2, metrics.height()
            p.save()
            p.translate(x, top)
            p.rotate(-self.angle)
            p.drawText(QRectF(-w, -hh / 2, w, hh), int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
            p.restore()

    def _is_highlight(self, rect: QRectF) -> bool:
        """Whether a horizontal label's rect sits at the highlighted slot (names can repeat)."""
        view = self.linkedView()
        if view is None or self.highlight is None:
            return False
        centre = self.mapFromScene(view.mapViewToScene(QPointF(0, self.highlight + self.offset))
                                   if self.orientation in ("left", "right")
                                   else view.mapViewToScene(QPointF(self.highlight + self.offset, 0)))
        c = rect.center()
        return abs((c.y() - centre.y()) if self.orientation in ("left", "right") else (c.x() - centre.x())) < 1.0
