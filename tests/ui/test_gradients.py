"""GradientsPanel: the curves are the history's per-layer gradient norms and update ratios,
the heat maps are the history's histogram rows of the selected (or nearest parametrised)
layer, and clicks on a curve or the depth key select that layer."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.ui.conftest import show_panel
from visualizer.ui.panels.gradients import GradientsPanel, uniform_columns


def linked(qtbot, context, run, extra_frames: int = 3):
    """The panel after the fixture's frame and ``extra_frames`` more training frames."""
    panel = show_panel(qtbot, GradientsPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    for _ in range(extra_frames):
        run.session.arm()
        frame = run.session.step()
        assert frame is not None and frame.gradients
        context.history.ingest(frame)
    panel.render(context.history.latest)
    return panel


def test_curves_equal_history_series(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    history = panel_context.history
    assert set(panel.shown["grad_norm"]) == set(mlp_run.info.param_layers)
    for name in mlp_run.info.param_layers:
        steps, cols = history.layers[name].data()
        has = np.isfinite(cols["grad_norm"])
        assert has.sum() == 4  # the fixture's frame and three more
        assert np.array_equal(panel.shown["grad_norm"][name], cols["grad_norm"][has])
        assert np.array_equal(panel.shown["steps"], steps[has])
        norm_x, norm_y = panel.norm_lines.data(name)
        assert np.array_equal(norm_y, cols["grad_norm"][has])  # all positive, drawn as they are
        assert np.array_equal(norm_x, steps[has])
        known = np.isfinite(cols["update_ratio"])
        assert np.array_equal(panel.shown["update_ratio"][name], cols["update_ratio"][known])
        assert np.allclose(panel.ratio_lines.data(name)[1], cols["update_ratio"][known])
    last = history.latest
    for name, g in last.gradients.items():
        assert panel.shown["grad_norm"][name][-1] == pytest.approx(g.grad_norm)
        assert panel.shown["update_ratio"][name][-1] == pytest.approx(g.update_ratio)
    assert panel.norm_plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert panel.ratio_plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert panel.reference.value() == pytest.approx(-3.0)  # 1e-3 on the log axis


def test_heat_maps_are_history_rows_of_selected_layer(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    history = panel_context.history
    layer = mlp_run.info.param_layers[1]
    panel_context.selection.set(layer=layer)
    assert panel.shown["hist_layer"] == layer
    weight_rows = history.weight_hist[layer].view()
    grad_rows = history.grad_hist[layer].view()
    assert len(weight_rows) >= 4
    steps = history.hist_steps[layer].view().astype(float)
    # the fixture's frame is some steps before the others: columns are laid out evenly in steps,
    # and the column at each capture step is exactly that capture's row
    columns = panel.shown["hist_steps"]
    assert np.allclose(np.diff(columns), 1.0) and columns[0] == steps[0] and columns[-1] == steps[-1]
    for step, w_row, g_row in zip(steps, weight_rows, grad_rows):
        col = int(np.flatnonzero(columns == step)[0])
        assert np.array_equal(panel.shown["weight_hist"][col], w_row)
        assert np.array_equal(panel.shown["grad_hist"][col], g_row)
    assert np.array_equal(panel.shown["weight_hist"][-1], history.latest.gradients[layer].weight_hist)
    assert np.array_equal(panel.shown["weight_hist"], uniform_columns(steps, weight_rows)[1])
    # the image: bins up the y axis, steps along x, log-scaled counts with explicit levels
    assert np.allclose(panel.weights.image.image, np.log10(1 + panel.shown["weight_hist"].T))
    assert np.allclose(panel.grads.image.image, np.log10(1 + panel.shown["grad_hist"].T))
    edges = history.gradients[layer].weight_edges
    rect = panel.weights.image.mapRectToParent(panel.weights.image.boundingRect())
    assert rect.top() == pytest.approx(edges[0]) and rect.bottom() == pytest.approx(edges[-1])
    assert panel.weights.colorbar.levels()[1] == pytest.approx(np.log10(1 + weight_rows).max())
    assert layer in panel.hist_caption.text()


def test_layer_without_parameters_uses_nearest_before(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run, extra_frames=0)
    panel_context.selection.set(layer="hidden2.relu")
    assert panel.shown["hist_layer"] == "hidden2.linear"
    assert np.array_equal(panel.shown["grad_hist"], panel_context.history.grad_hist["hidden2.linear"].view())
    assert "hidden2.relu has no parameters" in panel.hist_caption.text()
    # the curve of the layer whose histograms are shown is the highlighted one
    widths = {n: panel.norm_lines.pen(n).widthF() for n in panel.colors}
    assert widths["hidden2.linear"] > max(w for n, w in widths.items() if n != "hidden2.linear")
    assert panel.depth_key.box.isVisible()


def test_clicks_select_layer_and_highlight_follows(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run, extra_frames=0)
    params = mlp_run.info.param_layers
    panel.depth_key.layer_clicked.emit(2)
    assert panel_context.selection.layer == params[2]
    panel.ratio_lines.clicked.emit(params[0])  # what a click near its curve sends (picking: test_multi_curve.py)
    assert panel_context.selection.layer == params[0]
    assert panel.shown["hist_layer"] == params[0]
    assert panel.norm_lines.pen(params[0]).widthF() > panel.norm_lines.pen(params[1]).widthF()
    # depth colours: one per parametrised layer, early lighter than late
    light = [sum(panel.colors[n]) for n in params]
    assert light[0] > light[-1]


def test_paused_frames_leave_no_holes_and_cnn_works(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run, extra_frames=1)
    before = {n: v.copy() for n, v in panel.shown["grad_norm"].items()}
    paused = cnn_run.session.capture_now()  # what a capture while paused looks like
    assert paused.gradients == {}
    panel_context.history.ingest(paused)
    panel.render(paused)
    for name, values in before.items():
        assert np.array_equal(panel.shown["grad_norm"][name], values)
    layer = panel.shown["hist_layer"]
    assert np.array_equal(panel.shown["weight_hist"], panel_context.history.weight_hist[layer].view())
    assert set(panel.shown["grad_norm"]) == set(cnn_run.info.param_layers)


def test_before_any_frame(qtbot, panel_context, mlp_run):
    panel = GradientsPanel(panel_context)
    qtbot.addWidget(panel)
    panel.render(None)  # no run yet
    panel.set_run(mlp_run.info)
    panel.render(None)
    assert panel.shown["grad_norm"] == {}
    assert panel.shown["weight_hist"].size == 0
    assert "after the first training step" in panel.caption.text()


def test_uneven_capture_steps_become_even_columns():
    steps = np.array([0.0, 1.0, 2.0, 10.0, 11.0])
    rows = np.arange(5)[:, None] * np.ones((1, 3))
    grid, out = uniform_columns(steps, rows)
    assert np.allclose(np.diff(grid), np.diff(grid)[0])
    assert grid[0] == 0 and grid[-1] == 11 and len(grid) == 12
    expected = [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 4]  # newest row at or before each column's step
    assert np.array_equal(out[:, 0], expected)
    even_steps = np.array([3.0, 5.0, 7.0])
    assert np.array_equal(uniform_columns(even_steps, rows[:3])[1], rows[:3])


def test_diverged_training_does_not_break_the_panel(qtbot, panel_context, mlp_run):
    """NaN gradients and histograms (a run that blew up) draw as gaps, never raise."""
    panel = linked(qtbot, panel_context, mlp_run, extra_frames=0)
    frame = mlp_run.frame
    broken = {
        name: dataclasses.replace(g, grad_norm=float("nan"), update_ratio=float("nan"),
                                  weight_hist=np.full_like(g.weight_hist, np.nan), grad_hist=np.full_like(g.grad_hist, np.nan))
        for name, g in frame.gradients.items()
    }
    bad = dataclasses.replace(frame, step=frame.step + 1, gradients=broken)
    panel_context.history.ingest(bad)
    panel.render(bad)
    for name, values in panel.shown["grad_norm"].items():
        assert len(values) == 1 and values[0] == frame.gradients[name].grad_norm  # the NaN row is a gap
    low, high = panel.weights.colorbar.levels()
    assert np.isfinite(low) and np.isfinite(high)
