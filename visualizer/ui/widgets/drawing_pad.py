"""A square pad to draw on with the mouse (a digit, a shape); its ink is read as a numpy array.

Drawn into a QImage shown by a QLabel (no paint override); a stroke is a round pen of
``pen`` pixels. ``drawn`` is emitted when a stroke ends or the pad is cleared.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel


class DrawingPad(QLabel):
    """Black ink on white; ``ink()`` is (size, size) float32 in [0, 1] (1 = fully inked)."""

    drawn = Signal()

    def __init__(self, size: int = 256, pen: float = 22.0) -> None:
        super().__init__()
        self.size_px = size
        self.pen_width = pen
        self.setFixedSize(size, size)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button; right-click or Clear to start again")
        self.image = QImage(size, size, QImage.Format.Format_Grayscale8)
        self._last: QPointF | None = None
        self.clear()

    def clear(self) -> None:
        self.image.fill(QColor(255, 255, 255))
        self._refresh()
        self.drawn.emit()

    def ink(self) -> np.ndarray:
        """The drawing as (size, size) float32, 0 = paper, 1 = ink."""
        ptr = self.image.constBits()
        rows = np.frombuffer(ptr, np.uint8).reshape(self.size_px, self.image.bytesPerLine())[:, : self.size_px]
        return 1.0 - rows.astype(np.float32) / 255.0

    def set_ink(self, ink: np.ndarray) -> None:
        """Replace the drawing with ``ink`` (size, size) in [0, 1] (tests, loading a sample)."""
        ink = np.asarray(ink, np.float32)
        if ink.shape != (self.size_px, self.size_px):
            raise ValueError(f"ink must be {self.size_px}x{self.size_px}, got {ink.shape}")
        grey = np.ascontiguousarray(np.rint(255 * (1.0 - ink.clip(0, 1))).astype(np.uint8))
        self.image = QImage(grey.data, self.size_px, self.size_px, self.size_px, QImage.Format.Format_Grayscale8).copy()
        self._refresh()
        self.drawn.emit()

    def stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw a polyline through ``points`` (pixels) with the pen, as a mouse drag would."""
        painter = QPainter(self.image)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(0, 0, 0), self.pen_width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                                Qt.PenJoinStyle.RoundJoin))
            pts = [QPointF(*p) for p in points]
            if len(pts) == 1:
                painter.drawPoint(pts[0])
            for a, b in zip(pts, pts[1:]):
                painter.drawLine(a, b)
        finally:
            painter.end()
        self._refresh()

    def _refresh(self) -> None:
        pix = QPixmap.fromImage(self.image)
        painter = QPainter(pix)
        painter.setPen(QColor(210, 210, 210))
        painter.drawRect(0, 0, self.size_px - 1, self.size_px - 1)
        painter.end()
        self.setPixmap(pix)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.RightButton:
            self.clear()
            return
        self._last = event.position()
        self.stroke([(self._last.x(), self._last.y())])

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._last is None:
            return
        p = event.position()
        self.stroke([(self._last.x(), self._last.y()), (p.x(), p.y())])
        self._last = p

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._last is not None:
            self._last = None
            self.drawn.emit()
