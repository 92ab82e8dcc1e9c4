"""Save a widget (the window or one panel) as PNG or SVG, written atomically."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QWidget


def save_widget_image(widget: QWidget, path: str | os.PathLike[str]) -> Path:
    """Render ``widget`` to ``path``; the format follows the suffix (.png or .svg)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise OSError(f"unsupported image type {suffix or '(none)'}; use .png or .svg")
    if not path.parent.exists():
        raise OSError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".png":
            if not widget.grab().save(tmp, "PNG"):
                raise OSError(f"could not write {path}")
        else:
            from PySide6.QtSvg import QSvgGenerator

            gen = QSvgGenerator()
            gen.setFileName(tmp)
            gen.setSize(widget.size())
            gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
            gen.setTitle(widget.windowTitle() or "visualizer")
            painter = QPainter(gen)
            try:
                widget.render(painter)
            finally:
                painter.end()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["save_widget_image"]
