"""Save a widget (the window or one panel) as PNG or SVG, written atomically."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, QRect
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QWidget

from visualizer.files import atomic_write


def save_widget_image(widget: QWidget, path: str | os.PathLike[str]) -> Path:
    """Render ``widget`` to ``path``; the format follows the suffix (.png or .svg)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise OSError(f"unsupported image type {suffix or '(none)'}; use .png or .svg")
    if not path.parent.exists():
        raise OSError(f"folder {path.parent} does not exist")
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if suffix == ".png":
        if not widget.grab().save(buffer, "PNG"):
            raise OSError(f"could not render {path.name}")
    else:
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setOutputDevice(buffer)
        gen.setSize(widget.size())
        gen.setResolution(widget.logicalDpiX())  # text at the size it has on screen (the default is 72 dpi)
        gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
        gen.setTitle(widget.windowTitle() or "visualizer")
        painter = QPainter(gen)
        try:
            # QWidget's own render: a panel's ``render`` draws a frame, not onto a painter
            QWidget.render(widget, painter, QPoint())
        finally:
            painter.end()
    buffer.close()
    return atomic_write(path, bytes(data.data()))
