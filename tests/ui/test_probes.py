"""LayerProbesPanel: shows the probe accuracies computed on the fixture's model, keeps a
layer x step history, asks for probe runs (Run now, auto-refresh), cancels, ignores
superseded updates, shows errors, and clicks select layers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import show_panel
from visualizer.capture import hierarchy as h
from visualizer.capture.jobs import JobUpdate
from visualizer.ui.panels.probes import HISTORY, KIND, NAME, LayerProbesPanel
from visualizer.ui.widgets.category_axis import abbreviate, nice_stride
from visualizer.ui.widgets.history_heatmap import StepHistory, step_columns


@pytest.fixture(scope="module")
def cnn_probes(cnn_run) -> dict[str, float]:
    s = cnn_run.session
    x, y = s.analysis_set
    return h.layer_probes(s.trainer.model, x, y, s.layer_order, folds=3)


def done(result, step: int) -> JobUpdate:
    return JobUpdate(NAME, 1, "done", 1, 1, result=result, tag={"step": step, "kind": KIND})


def panel_for(qtbot, context, run) -> LayerProbesPanel:
    panel = show_panel(qtbot, LayerProbesPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def test_first_frame_requests_probes_and_result_is_shown(qtbot, panel_context, cnn_run, cnn_probes):
    panel = panel_for(qtbot, panel_context, cnn_run)
    assert panel.requested[NAME] == {"kind": KIND}  # auto-refresh asked on the first frame
    assert panel.controls.running
    panel.receive(done(cnn_probes, cnn_run.frame.step))
    names = ["input", *cnn_run.info.layer_names]
    assert list(cnn_probes) == names
    assert panel.shown["layers"] == names
    assert panel.shown["accuracy"] == pytest.approx(cnn_probes)
    values = np.array([cnn_probes[n] for n in names])
    assert np.allclose(panel.curve.getData()[1], values)
    assert np.array_equal(panel.curve.getData()[0], np.arange(len(names)))
    assert panel.shown["heat"].shape == (len(names), 1)
    assert np.allclose(panel.shown["heat"][:, 0], values)
    assert np.array_equal(panel.shown["steps"], [cnn_run.frame.step])
    assert panel.chance.value() == pytest.approx(1 / len(cnn_run.info.class_names))
    assert not panel.controls.running
    assert not panel.body.showing_message
    assert "held-out" in panel.caption.text()


def test_history_has_one_column_per_run_in_step_order(qtbot, panel_context, cnn_run, cnn_probes):
    panel = panel_for(qtbot, panel_context, cnn_run)
    names = ["input", *cnn_run.info.layer_names]
    later = {n: min(1.0, a + 0.1 * i) for i, (n, a) in enumerate(cnn_probes.items())}
    panel.receive(done(cnn_probes, 3))
    panel.receive(done(later, 40))
    assert np.array_equal(panel.shown["steps"], [3, 40])
    assert np.allclose(panel.shown["heat"][:, 0], [cnn_probes[n] for n in names])
    assert np.allclose(panel.shown["heat"][:, 1], [later[n] for n in names])
    assert panel.shown["accuracy"] == pytest.approx(later)  # the curve shows the newest
    assert np.allclose(panel.first_curve.getData()[1], [cnn_probes[n] for n in names])
    image = panel.heat.view.image.image  # rows = layers; two evenly spaced runs, drawn as they are
    assert np.allclose(image, panel.shown["heat"])
    assert panel.runs.capacity == HISTORY


def test_run_now_and_auto_refresh_requests(qtbot, panel_context, cnn_run, cnn_probes):
    panel = panel_for(qtbot, panel_context, cnn_run)
    frame = cnn_run.frame
    panel.receive(done(cnn_probes, frame.step))
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        qtbot.mouseClick(panel.controls.status.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME, KIND, {}]
    panel.receive(done(cnn_probes, frame.step))
    now = [1000.0]
    panel.controls.refresh.clock = lambda: now[0]
    panel.controls.refresh.requested(frame.step)
    later = dataclasses.replace(frame, step=frame.step + 5)
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(frame)  # same step: nothing new to probe
        panel.render(later)  # too soon
    now[0] += 11
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(frame)  # the step did not change (paused)
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel.render(later)
    assert blocker.args == [NAME, KIND, {}]
    now[0] += 11
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(dataclasses.replace(frame, step=frame.step + 9))  # the previous run is not done
    panel.receive(done(cnn_probes, later.step))  # that run took 11 s: wait twice as long before the next
    assert panel.controls.refresh.last_duration == pytest.approx(11)
    now[0] += 10  # 21 s since the request
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(dataclasses.replace(frame, step=frame.step + 9))
    now[0] += 2
    panel.controls.refresh.setChecked(False)
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(dataclasses.replace(frame, step=frame.step + 9))
    panel.controls.refresh.setChecked(True)
    with qtbot.waitSignal(panel.analysis_requested):
        panel.render(dataclasses.replace(frame, step=frame.step + 9))


def test_cancel_error_and_superseded_updates(qtbot, panel_context, cnn_run, cnn_probes):
    panel = panel_for(qtbot, panel_context, cnn_run)
    status = panel.controls.status
    panel.receive(JobUpdate(NAME, 1, "running", 3, 12, "features: 64/64", data={"input": 0.2},
                            tag={"step": 3, "kind": KIND}))
    assert status.bar.value() == 250
    assert status.cancel_button.isEnabled()
    panel.receive(JobUpdate(NAME, 1, "cancelled", 3, 12, tag={"step": 3, "kind": KIND}))
    assert status.running and "cancelled" not in status.label.text()  # replaced by a newer request, not asked for
    with qtbot.waitSignal(panel.analysis_cancelled) as blocker:
        qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME]
    panel.receive(JobUpdate(NAME, 1, "cancelled", 3, 12, tag={"step": 3, "kind": KIND}))
    assert status.label.text() == "cancelled" and not status.running
    panel.receive(JobUpdate(NAME, 2, "done", result=cnn_probes, tag={"step": 3, "kind": "selectivity"}))
    assert "accuracy" not in panel.shown  # not an answer to this panel's request
    panel.run_now()
    panel.receive(JobUpdate(NAME, 3, "error", message="ValueError: a probe needs at least two classes",
                            tag={"step": 3, "kind": KIND}))
    assert "at least two classes" in status.label.text()
    assert panel.body.showing_message and "at least two classes" in panel.body.message.text()


def test_clicks_select_layers_and_selection_moves_highlight(qtbot, panel_context, cnn_run, cnn_probes):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel.receive(done(cnn_probes, 3))
    names = panel.shown["layers"]
    sel = panel_context.selection
    i = names.index("block2.conv")
    vb = panel.plot.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(i, cnn_probes["block2.conv"]))
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=panel.plot.mapFromScene(scene))
    assert sel.layer == "block2.conv"
    x, y = panel.marker.getData()
    assert list(x) == [i] and y[0] == pytest.approx(cnn_probes["block2.conv"])
    assert panel.heat.axis.highlight == i and panel.axis.highlight == i
    assert "block2.conv" in panel.caption.text()
    panel.heat.row_clicked.emit(names.index("head"))
    assert sel.layer == "head"
    assert list(panel.marker.getData()[0]) == [names.index("head")]
    panel.heat.row_clicked.emit(0)  # "input" is not a layer of the model
    assert sel.layer == "head"
    sel.set(layer="fc.relu")
    assert panel.heat.axis.highlight == names.index("fc.relu")
    assert panel.heat.boxes[1].isVisible()


def test_dense_model_on_plane_data(qtbot, panel_context, mlp_run):
    panel = panel_for(qtbot, panel_context, mlp_run)
    s = mlp_run.session
    x, y = s.analysis_set
    acc = h.layer_probes(s.trainer.model, x, y, s.layer_order, folds=2)
    panel.receive(done(acc, mlp_run.frame.step))
    assert panel.shown["accuracy"] == pytest.approx(acc)
    assert panel.shown["layers"] == ["input", *mlp_run.info.layer_names]
    assert panel.chance.value() == pytest.approx(1 / 3)


def test_step_history_is_bounded_and_ordered() -> None:
    runs = StepHistory(capacity=3)
    for step in range(5):
        runs.add(step * 10, np.full(2, step))
    assert list(runs.steps()) == [20, 30, 40]
    runs.add(40, np.array([9.0, 9.0]))  # the same snapshot again: replaced
    assert list(runs.steps()) == [20, 30, 40] and runs.matrix()[0, -1] == 9
    runs.add(5, np.zeros(2))  # the weights were reset: a new history
    assert list(runs.steps()) == [5] and runs.matrix().shape == (2, 1)
    values = np.array([[1.0, 2.0, 3.0]])
    image, left, width = step_columns(np.array([0, 10, 40]), values)
    assert left == -5 and width == 60  # centred on each step, halfway to the neighbours
    cols = np.linspace(left, left + width, image.shape[1], endpoint=False) + width / image.shape[1] / 2
    assert np.array_equal(image[0], np.where(cols < 5, 1.0, np.where(cols < 25, 2.0, 3.0)))


def test_long_layer_names_are_shortened_to_their_specific_end() -> None:
    assert abbreviate("block1.conv") == "block1.conv"
    assert abbreviate("stage2.block1.relu2") == "s2.b1.relu2"
    assert abbreviate("x" * 30, 10) == "…" + "x" * 9
    assert nice_stride(0.5) == 1 and nice_stride(2.2) == 5 and nice_stride(11) == 20
