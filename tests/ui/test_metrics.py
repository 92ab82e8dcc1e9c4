"""Metrics: the curves are the run history's values, and a frame costs one paint per view."""
import numpy as np
import pyqtgraph as pg

from tests.ui.conftest import show_panel
from visualizer.ui.panels.metrics import MetricsPanel


def _next_frame(run, steps=10):
    session = run.session
    session.run(steps)
    session.arm()
    frame = session.step()
    session.mailbox.take("train")
    return frame


def test_metrics_show_the_history_and_each_view_paints_once_per_frame(qtbot, panel_context, mlp_run, monkeypatch):
    painted: list[int] = []
    paint = pg.GraphicsView.paintEvent  # patched before the views exist: PySide binds overrides at creation
    monkeypatch.setattr(pg.GraphicsView, "paintEvent", lambda view, event: (painted.append(id(view)), paint(view, event))[1])
    panel = show_panel(qtbot, MetricsPanel, panel_context, mlp_run)
    qtbot.wait(50)  # first layout and paints
    views = [v for v in panel.findChildren(pg.GraphicsView) if v.isVisible()]
    for _ in range(3):
        frame = _next_frame(mlp_run)
        panel_context.history.ingest(frame)
        painted.clear()
        panel.render(frame)
        panel.settle()
        qtbot.wait(30)
        assert sorted(painted) == sorted(id(v) for v in views)  # every view once, none twice
    steps, m = panel_context.history.metrics.data()
    assert np.array_equal(panel.shown["steps"], steps) and panel.shown["steps"][-1] == frame.step
    assert np.array_equal(panel.shown["train_loss"], m["train_loss"], equal_nan=True)
