"""A compact horizontal bar chart of class probabilities: one row per class, its name,
a bar from 0 to 100 % and the value; the true class is marked and the predicted one bold."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QLabel

from visualizer.ui.widgets.colormaps import class_color


class ProbabilityBars(QLabel):
    """Drawn into a pixmap on each update (no paint override), sized ``width`` x ``height``."""

    def __init__(self, width: int = 170, height: int = 100, title: str = "output P(class)") -> None:
        super().__init__()
        self.setFixedSize(width, height)
        self.title = title
        self.probs = np.zeros(0, np.float32)
        self.setToolTip("Softmax output: the model's probability for each class. "
                        "✓ marks the true class, bold the predicted one.")

    def set_probs(self, probs: np.ndarray | None, class_names: list[str], true_label: int | None = None) -> None:
        """Draw ``probs`` (K,) with ``class_names``; ``None`` draws an empty chart."""
        self.probs = np.zeros(0, np.float32) if probs is None else np.asarray(probs, np.float32)
        w, h = self.width(), self.height()
        pix = QPixmap(w, h)
        pix.fill(Qt.GlobalColor.white)
        p = QPainter(pix)
        try:
            font = QFont(self.font())
            font.setPointSizeF(7.5)
            p.setFont(font)
            p.setPen(QColor(60, 60, 60))
            p.drawText(QRectF(0, 0, w, 12), Qt.AlignmentFlag.AlignHCenter, f"{self.title}, 0–100 %")
            k = len(self.probs)
            if k:
                top, row = 13.0, (h - 14.0) / k
                size = float(np.clip(row * 0.8, 5.0, 7.5))
                font.setPointSizeF(size)
                name_w, value_w = 0.38 * w, 30.0
                bar_x, bar_w = name_w + 2, w - name_w - value_w - 4
                predicted = int(np.argmax(self.probs))
                for i, prob in enumerate(self.probs):
                    y = top + i * row
                    name = class_names[i] if i < len(class_names) else str(i)
                    if i == true_label:
                        name = "✓ " + name
                    font.setBold(i == predicted)
                    p.setFont(font)
                    p.setPen(QColor(30, 30, 30))
                    text = p.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, int(name_w))
                    p.drawText(QRectF(0, y, name_w, row), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
                    p.fillRect(QRectF(bar_x, y + row * 0.15, bar_w, row * 0.7), QColor(235, 235, 235))
                    value = float(prob) if np.isfinite(prob) else 0.0
                    p.fillRect(QRectF(bar_x, y + row * 0.15, bar_w * min(max(value, 0.0), 1.0), row * 0.7),
                               QColor(*class_color(i)))
                    p.drawText(QRectF(bar_x + bar_w + 2, y, value_w, row), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                               f"{100 * value:.0f}%")
        finally:
            p.end()
        self.setPixmap(pix)
