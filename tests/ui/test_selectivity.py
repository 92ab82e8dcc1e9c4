"""SelectivityPanel: asks for the selected layer (again when the layer changes), shows the
selectivity computed on the fixture's model as bars and a units x steps history, ignores
answers for another layer, shows errors, and clicking a unit selects that channel."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import show_panel
from visualizer.capture import hierarchy as h
from visualizer.capture.jobs import JobUpdate
from visualizer.ui.panels.selectivity import KIND, NAME, SelectivityPanel


def selectivity(run, layer: str):
    s = run.session
    x, y = s.analysis_set
    return h.class_selectivity(s.trainer.model, x, y, layer)


def done(result, step: int, layer: str) -> JobUpdate:
    return JobUpdate(NAME, 1, "done", 1, 1, result=result, tag={"step": step, "kind": KIND, "layer": layer})


def panel_for(qtbot, context, run) -> SelectivityPanel:
    panel = show_panel(qtbot, SelectivityPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def test_requests_follow_the_selected_layer(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    first = cnn_run.info.layers[0].name
    assert panel.requested[NAME] == {"kind": KIND, "layer": first}
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel_context.selection.set(layer="block2.relu")
    assert blocker.args == [NAME, KIND, {"layer": "block2.relu"}]
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(cnn_run.frame)  # already asked for this layer
        panel_context.selection.set(channel=2)
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        qtbot.mouseClick(panel.controls.status.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME, KIND, {"layer": "block2.relu"}]
    panel.receive(done(selectivity(cnn_run, "block2.relu"), 3, "block2.relu"))
    panel.controls.refresh.last_time -= 60  # long enough ago
    with qtbot.waitSignal(panel.analysis_requested):
        panel.render(dataclasses.replace(cnn_run.frame, step=cnn_run.frame.step + 4))


def test_result_and_history_are_shown(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    layer = "block2.relu"
    panel_context.selection.set(layer=layer)
    r1 = selectivity(cnn_run, layer)
    r2 = dataclasses.replace(r1, index=np.clip(r1.index * 1.5, 0, 1).astype(np.float32))
    panel.receive(done(r1, 3, layer))
    panel.receive(done(r2, 20, layer))
    assert panel.shown["layer"] == layer
    assert np.allclose(panel.shown["index"], r2.index)
    assert np.array_equal(panel.shown["preferred"], r2.preferred)
    assert np.array_equal(panel.shown["steps"], [3, 20])
    assert panel.shown["heat"].shape == (16, 2)  # block2 has 16 channels
    assert np.allclose(panel.shown["heat"][:, 0], r1.index) and np.allclose(panel.shown["heat"][:, 1], r2.index)
    assert np.allclose(panel.bars.opts["width"], np.clip(r2.index, 0, 1))
    assert np.allclose(panel.heat.view.image.image, panel.shown["heat"])
    names = cnn_run.info.class_names
    unit = int(np.argmax(r2.index))
    assert names[int(r2.preferred[unit])] in panel.unit_tip(unit)
    specific = int((r2.index >= 0.5).sum())
    assert f"{specific} of 16 class-specific" in panel.caption.text()
    assert panel.heat.plot.getAxis("left").labelText == f"channel of {layer}"


def test_answers_for_another_layer_are_ignored(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block1.conv")
    old = selectivity(cnn_run, "block1.conv")
    panel_context.selection.set(layer="block2.conv")
    panel.receive(done(old, 3, "block1.conv"))
    assert "index" not in panel.shown and panel.body.showing_message
    new = selectivity(cnn_run, "block2.conv")
    panel.receive(done(new, 3, "block2.conv"))
    assert panel.shown["layer"] == "block2.conv" and np.allclose(panel.shown["index"], new.index)


def test_clicking_a_unit_selects_its_channel(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    layer = "block2.conv"
    panel_context.selection.set(layer=layer)
    result = selectivity(cnn_run, layer)
    panel.receive(done(result, 3, layer))
    vb = panel.bars_plot.vb
    scene = vb.mapViewToScene(QPointF(0.05, 5.5))
    qtbot.mouseClick(panel.bars_view.viewport(), Qt.MouseButton.LeftButton, pos=panel.bars_view.mapFromScene(scene))
    assert panel_context.selection.channel == 5 and panel_context.selection.layer == layer
    assert panel.heat.axis.highlight == 5
    assert list(panel.bar_box.opts["y"]) == [5.5]
    assert "Selected channel 5" in panel.caption.text()
    panel.heat.row_clicked.emit(9)
    assert panel_context.selection.channel == 9 and panel.heat.axis.highlight == 9


def test_errors_cancel_and_dense_layers(qtbot, panel_context, mlp_run):
    panel = panel_for(qtbot, panel_context, mlp_run)
    layer = mlp_run.info.layers[0].name
    with qtbot.waitSignal(panel.analysis_cancelled) as blocker:
        qtbot.mouseClick(panel.controls.status.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME]
    panel.receive(JobUpdate(NAME, 1, "cancelled", tag={"step": 3, "kind": KIND, "layer": layer}))
    assert panel.controls.status.label.text() == "cancelled"
    panel.run_now()
    panel.receive(JobUpdate(NAME, 2, "error", message="ValueError: layer(s) not reached",
                            tag={"step": 3, "kind": KIND, "layer": layer}))
    assert "not reached" in panel.controls.status.label.text() and "not reached" in panel.body.message.text()
    panel.run_now()
    result = selectivity(mlp_run, layer)
    panel.receive(done(result, 3, layer))
    assert np.allclose(panel.shown["index"], result.index) and len(result.index) == 16
    assert panel.heat.plot.getAxis("left").labelText == f"unit of {layer}"
    assert panel.shown["index"] == pytest.approx(result.index)
