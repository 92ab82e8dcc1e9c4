"""LayersPanel: the table shows the run's layers and the frame's real values, updates
in place, and is linked to the selection both ways."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.ui.panels.layers import ACT, DEAD, DEAD_TINT, GRAD, NAME, PARAMS, SHAPE, LayersPanel
from visualizer.ui.widgets.sparkline import SPARKLINE_ROLE, Sparkline


def expected(run):
    """(act_norm, grad, dead) per layer as the panel should show them."""
    frame, info = run.frame, run.info
    act, grad, dead = [], [], []
    for layer in info.layers:
        a = frame.activations[layer.name]
        act.append(a.norm)
        dead.append(a.dead_fraction)
        grad.append(frame.gradients[layer.name].grad_norm if layer.name in info.param_layers else a.grad_norm)
    return np.array(act), np.array(grad), np.array(dead)


def cell(panel, row, col, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.data(panel.model.index(row, col), role)


def test_table_shows_layers_and_frame_values(qtbot, panel_context, cnn_run):
    panel = show_panel(qtbot, LayersPanel, panel_context, cnn_run)
    info = cnn_run.info
    names = [l.name for l in info.layers]
    assert list(panel.shown["layers"]) == names
    assert panel.model.rowCount() == len(names)
    act, grad, dead = expected(cnn_run)
    assert np.allclose(panel.shown["act_norm"], act)
    assert np.allclose(panel.shown["grad"], grad)
    assert np.allclose(panel.shown["dead"], dead)
    for row, layer in enumerate(info.layers):
        assert cell(panel, row, NAME) == layer.name
        assert cell(panel, row, SHAPE) == "×".join(str(s) for s in layer.output_shape)
        assert cell(panel, row, PARAMS) == f"{layer.num_params:,}"
        assert cell(panel, row, DEAD) == f"{100 * dead[row]:.0f} %"
        tint = cell(panel, row, DEAD, Qt.ItemDataRole.BackgroundRole)
        assert (tint is not None and tint.color() == DEAD_TINT) == (dead[row] > 0.5)
    conv = names.index("block1.conv")
    assert cell(panel, conv, SHAPE) == "8×32×32"
    assert f"{info.num_params:,} parameters" in panel.footer.text()
    assert "step" in panel.caption.text()
    assert cell(panel, 0, ACT, Qt.ItemDataRole.ToolTipRole)  # every column explains itself
    assert panel.model.headerData(GRAD, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)


def test_sparklines_follow_history_in_place(qtbot, panel_context, cnn_run):
    panel = show_panel(qtbot, LayersPanel, panel_context, cnn_run)
    info, history = cnn_run.info, panel_context.history
    param_row = [l.name for l in info.layers].index(info.param_layers[0])
    plain_row = next(i for i, l in enumerate(info.layers) if l.name not in info.param_layers)
    line = cell(panel, param_row, GRAD, SPARKLINE_ROLE)
    assert isinstance(line, Sparkline) and line.log
    assert np.allclose(line.values, history.layers[info.param_layers[0]].data()[1]["grad_norm"])
    plain = cell(panel, plain_row, GRAD, SPARKLINE_ROLE)
    assert np.allclose(plain.values, [cnn_run.frame.activations[info.layers[plain_row].name].grad_norm])

    resets = []
    panel.model.modelReset.connect(lambda: resets.append(1))
    later = copy.copy(cnn_run.frame)
    later.step = cnn_run.frame.step + 5
    name = info.layers[0].name
    later.activations = dict(later.activations)
    later.activations[name] = dataclasses.replace(later.activations[name], norm=2.5)
    history.ingest(later)
    for _ in range(3):  # several renders within the rate limit
        panel.render(later)
    assert panel.shown["act_norm"][0] == 2.5
    qtbot.waitUntil(lambda: len(cell(panel, 0, ACT, SPARKLINE_ROLE).values) == 2, timeout=2000)
    act_line = cell(panel, 0, ACT, SPARKLINE_ROLE)
    assert not act_line.log and act_line.latest == 2.5
    assert list(act_line.steps) == [cnn_run.frame.step, later.step]
    assert resets == []  # cells changed, the table was not rebuilt


def test_click_selects_layer_and_selection_moves_highlight(qtbot, panel_context, cnn_run):
    panel = show_panel(qtbot, LayersPanel, panel_context, cnn_run)
    names = cnn_run.info.layer_names
    selection = panel_context.selection
    rect = panel.table.visualRect(panel.model.index(3, NAME))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selection.layer == names[3]

    selection.set(layer=names[-1])  # from another panel
    panel.selection_changed(frozenset({"layer"}))
    rows = [i.row() for i in panel.table.selectionModel().selectedRows()]
    assert rows == [len(names) - 1]
    assert panel.table.currentIndex().row() == len(names) - 1
    assert selection.layer == names[-1]


def test_mlp_run_and_paused_frames(qtbot, panel_context, mlp_run):
    panel = show_panel(qtbot, LayersPanel, panel_context, mlp_run)
    act, grad, dead = expected(mlp_run)
    assert list(panel.shown["layers"]) == mlp_run.info.layer_names
    assert np.allclose(panel.shown["act_norm"], act)
    assert np.allclose(panel.shown["grad"], grad)
    assert np.allclose(panel.shown["dead"], dead)
    assert cell(panel, 0, SHAPE) == str(mlp_run.info.layers[0].output_shape[0])

    paused = copy.copy(mlp_run.frame)  # captured while paused: no gradients, one layer missing
    paused.gradients = {}
    missing = mlp_run.info.layers[1].name
    paused.activations = {k: v for k, v in paused.activations.items() if k != missing}
    panel.render(paused)
    assert np.allclose(panel.shown["grad"][0], mlp_run.frame.gradients[mlp_run.info.layers[0].name].grad_norm)
    assert np.isnan(panel.shown["act_norm"][1]) and cell(panel, 1, DEAD) == "–"
    assert "not captured" in panel.caption.text()

    panel.render(None)
    assert np.all(np.isnan(panel.shown["act_norm"]))
    assert "No frame yet" in panel.caption.text()


def test_sparkline_log_scale_and_decimation_keep_spikes():
    steps = np.arange(5000.0)
    values = np.full(5000, 1e-3)
    values[1234] = 10.0  # one spike, four decades up
    values[10] = np.nan
    line = Sparkline(steps, values, log=True)
    x, y = line.points()
    assert len(x) <= 100 and np.isclose(y.max(), 1.0) and np.isclose(y.min(), -3.0)
    assert x[-1] == 4999 and line.latest == 1e-3
