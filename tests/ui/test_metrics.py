"""Metrics: the curves are the run history's values, and a frame costs one paint per view,
all in one paint pass of the window."""
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject

from tests.ui.conftest import show_panel
from visualizer.ui.panels.metrics import MetricsPanel


def _next_frame(run, steps=10):
    session = run.session
    session.run(steps)
    session.arm()
    frame = session.step()
    session.mailbox.take("train")
    return frame


class PassCounter(QObject):
    """Counts the window's paint passes (the update requests it handles)."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.UpdateRequest:
            self.passes += 1
        return False


def test_metrics_show_the_history_and_each_view_paints_once_per_frame_in_one_pass(qtbot, panel_context, mlp_run, monkeypatch):
    painted: list[tuple[int, int]] = []  # (view, pass)
    counter = PassCounter()
    paint = pg.GraphicsView.paintEvent  # patched before the views exist: PySide binds overrides at creation
    monkeypatch.setattr(pg.GraphicsView, "paintEvent",
                        lambda view, event: (painted.append((id(view), counter.passes)), paint(view, event))[1])
    panel = show_panel(qtbot, MetricsPanel, panel_context, mlp_run)
    panel.window().installEventFilter(counter)
    qtbot.wait(50)  # first layout and paints
    views = [v for v in panel.findChildren(pg.GraphicsView) if v.isVisible()]
    assert len(views) == 3
    for _ in range(3):
        frame = _next_frame(mlp_run)
        panel_context.history.ingest(frame)
        painted.clear()
        panel.render(frame)
        panel.settle()  # as the window does after each render
        qtbot.wait(30)
        assert sorted(v for v, _ in painted) == sorted(id(v) for v in views)  # every view once, none twice
        assert len({p for _, p in painted}) == 1  # and all in one pass of the window, not one pass each
    steps, m = panel_context.history.metrics.data()
    assert np.array_equal(panel.shown["steps"], steps) and panel.shown["steps"][-1] == frame.step
    assert np.array_equal(panel.shown["train_loss"], m["train_loss"], equal_nan=True)


def test_the_legends_sit_where_their_curves_are_not_and_have_a_backing(qtbot, panel_context, mlp_run):
    """Loss falls towards the bottom right and accuracy climbs towards the top right: each plot's
    legend takes the other corner, on a light backing so its names stay readable over a curve."""
    panel = show_panel(qtbot, MetricsPanel, panel_context, mlp_run)
    panel_context.history.ingest(_next_frame(mlp_run))
    panel.render(panel_context.history.latest)
    qtbot.wait(50)
    for plot, upper in ((panel.loss_plot, True), (panel.acc_plot, False)):
        item = plot.getPlotItem()
        box = item.vb.sceneBoundingRect()
        legend = item.legend.sceneBoundingRect()
        assert box.contains(legend.center()) and legend.center().x() > box.center().x()
        assert (legend.center().y() < box.center().y()) == upper  # scene y grows downwards
        assert item.legend.opts["brush"].color().alpha() > 0
