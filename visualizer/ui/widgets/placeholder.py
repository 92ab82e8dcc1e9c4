"""A view, or a short centred message in its place ("nothing to show because …"), so a
panel keeps its layout when it has nothing to draw."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget


class Placeholder(QStackedWidget):
    """Shows ``content`` normally and a centred, word-wrapped message instead of it on request."""

    def __init__(self, content: QWidget) -> None:
        super().__init__()
        self.content = content
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setStyleSheet("color: #555; padding: 12px;")
        self.addWidget(content)
        self.addWidget(self.message)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.setCurrentWidget(self.message)

    def show_content(self) -> None:
        self.setCurrentWidget(self.content)

    @property
    def showing_message(self) -> bool:
        return self.currentWidget() is self.message
