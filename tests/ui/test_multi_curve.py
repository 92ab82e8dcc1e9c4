"""MultiCurveItem: many named curves in one item (the Gradients panel's fast path)."""
import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF

from visualizer.ui.widgets.multi_curve import MultiCurveItem, peak_thin


def shown_plot(qtbot, item):
    widget = pg.PlotWidget()
    widget.resize(400, 300)
    widget.addItem(item)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.getPlotItem().vb.prepareForPaint()  # apply the auto range now
    return widget


def test_bounds_and_data_follow_the_curves_and_log_values_map(qtbot):
    item = MultiCurveItem(log_y=True)
    x = np.arange(5.0)
    item.set_curves({"a": (x, np.array([1e-3, 1e-2, 0.0, 1e-1, 1.0])), "b": (x + 10, np.full(5, 1e2))})
    assert np.array_equal(item.data("a")[0], x) and item.data("a")[1][2] == 0.0  # as given
    assert item.dataBounds(0) == (0.0, 14.0)
    assert item.dataBounds(1) == pytest.approx((-3.0, 2.0))  # log10; the zero is a gap, not -inf
    item.set_curves({})
    assert item.dataBounds(0) == (None, None) and item.boundingRect().isEmpty()


def test_a_point_near_a_curve_names_it_and_a_click_sends_it(qtbot):
    item = MultiCurveItem()
    x = np.linspace(0, 10, 50)
    item.set_curves({"low": (x, np.zeros_like(x)), "high": (x, np.full_like(x, 10.0))})
    widget = shown_plot(qtbot, item)  # noqa: F841 (keeps the scene alive)
    assert item.nearest(QPointF(5.0, 0.05)) == "low"
    assert item.nearest(QPointF(5.0, 9.9)) == "high"
    assert item.nearest(QPointF(5.0, 5.0)) is None  # half a plot away from both
    picked = []
    item.clicked.connect(picked.append)

    class Click:
        def __init__(self, pos):
            self._pos, self.accepted = pos, None

        def button(self):
            from PySide6.QtCore import Qt
            return Qt.MouseButton.LeftButton

        def pos(self):
            return self._pos

        def accept(self):
            self.accepted = True

        def ignore(self):
            self.accepted = False

    near, far = Click(QPointF(2.0, 10.0)), Click(QPointF(2.0, 5.0))
    item.mouseClickEvent(near)
    item.mouseClickEvent(far)
    assert picked == ["high"] and near.accepted and far.accepted is False  # far: the view pans instead


def test_thinning_keeps_every_bins_extremes():
    x = np.arange(10_000.0)
    y = np.sin(x / 50.0)
    y[4321] = 50.0  # one spike
    y[777] = np.nan
    tx, ty = peak_thin(x, y, 1000)
    assert len(tx) <= 1002 and np.nanmax(ty) == 50.0 and np.nanmin(ty) == pytest.approx(-1.0, abs=1e-3)
    assert np.all(np.diff(tx) >= 0)
    short = np.arange(10.0)
    assert peak_thin(short, short, 1000)[0] is short


def test_short_curves_get_dots_on_their_finite_points():
    item = MultiCurveItem(log_y=True, dots_below=5)
    item.set_curves({"short": (np.arange(3.0), np.array([1.0, 0.0, 10.0])), "long": (np.arange(9.0), np.ones(9))})
    assert [(p.x(), p.y()) for p in item._dots["short"]] == [(0.0, 0.0), (2.0, 1.0)]  # log10; the zero is a gap
    assert "long" not in item._dots


def test_dots_are_round_and_as_wide_on_screen_whatever_the_axes_scales(qtbot):
    """The dots are drawn in device pixels: a DOT_PX circle at each point's place on screen, even
    where one data unit of x is hundreds of pixels and one of y a fraction of one."""
    from PySide6.QtGui import QColor

    from visualizer.ui.widgets.multi_curve import DOT_PX

    item = MultiCurveItem(dots_below=5)
    item.set_curves({"short": (np.array([0.0, 1.0]), np.array([0.0, 1000.0]))})
    item.set_pen("short", pg.mkPen((200, 0, 0), width=1))
    widget = shown_plot(qtbot, item)
    widget.getPlotItem().vb.setRange(xRange=(-0.5, 1.5), yRange=(-500, 1500), padding=0)
    widget.getPlotItem().vb.prepareForPaint()
    image = widget.grab().toImage()
    view = widget.getPlotItem().vb
    for x, y in ((0.0, 0.0), (1.0, 1000.0)):
        centre = widget.mapFromScene(view.mapViewToScene(QPointF(x, y)))
        red = lambda dx, dy: QColor(image.pixel(centre.x() + dx, centre.y() + dy)).red() > 150 and \
            QColor(image.pixel(centre.x() + dx, centre.y() + dy)).green() < 100
        inside = [(d, 0) for d in (-1, 1)] + [(0, d) for d in (-1, 1)]
        assert all(red(dx, dy) for dx, dy in inside)  # filled round the centre, both ways
        far = int(DOT_PX) + 3
        assert not red(0, -far) and not red(0, far)  # and no taller than DOT_PX (the line runs diagonally)
