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
