"""PySide6 6.12.0 drops a reference to None on every Python-level paintEvent; the
interpreter then aborts with 'none_dealloc' after about a thousand repaints."""
import sys

import pytest


def test_repainting_a_plot_keeps_references_to_none(qtbot):
    pg = pytest.importorskip("pyqtgraph")
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.plot([0, 1, 4, 9])
    plot.resize(200, 150)
    plot.show()
    qtbot.waitExposed(plot)
    plot.repaint()
    before = sys.getrefcount(None)
    for _ in range(3000):
        plot.viewport().repaint()
    assert sys.getrefcount(None) >= before - 100
