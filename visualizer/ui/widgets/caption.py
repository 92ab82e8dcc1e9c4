"""A panel caption: a small, word-wrapped rich-text label saying what is shown."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def caption_label(text: str = "", scale: float = 0.9) -> QLabel:
    """A word-wrapped rich-text label, its font ``scale`` times the default size."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * scale)
    label.setFont(font)
    return label
