"""RepresentationsPanel: one PCA scatter per layer equal to the projections computed on the
fixture's model, coloured by the analysis-set labels; picking a point rings it in every
plot; clicking a plot selects its layer; requests, errors and updates in place."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import show_panel
from visualizer.capture import hierarchy as h
from visualizer.capture.jobs import JobUpdate
from visualizer.ui.panels.representations import KIND, NAME, SAMPLES, SELECTED_PEN, RepresentationsPanel


def projections(run):
    s = run.session
    x, _ = s.analysis_set
    return h.run_job(h.layer_projections_job(s.trainer.model, x[:SAMPLES], s.layer_order))


def done(result, step: int) -> JobUpdate:
    return JobUpdate(NAME, 1, "done", 1, 1, result=result, tag={"step": step, "kind": KIND, "samples": SAMPLES})


def panel_for(qtbot, context, run) -> RepresentationsPanel:
    panel = show_panel(qtbot, RepresentationsPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def test_scatters_equal_the_projections(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    assert panel.requested[NAME] == {"kind": KIND, "samples": SAMPLES}
    result = projections(cnn_run)
    panel.receive(done(result, cnn_run.frame.step))
    names = ["input", *cnn_run.info.layer_names]
    assert panel.shown["layers"] == names
    n = len(result["input"].points)
    assert np.array_equal(panel.shown["labels"], cnn_run.info.analysis_labels[:n])
    for name, scatter, note in zip(names, panel.scatters, panel.notes):
        assert np.array_equal(panel.shown["points"][name], result[name].points)
        x, y = scatter.getData()
        assert np.allclose(x, result[name].points[:, 0]) and np.allclose(y, result[name].points[:, 1])
        e = result[name].explained
        assert f"{e[0]:.0%} + {e[1]:.0%}" in note.text
    brushes = panel.scatters[0].data["brush"]  # coloured by true class
    first = int(panel.shown["labels"][0])
    assert all(b.color() == brushes[0].color() for b, c in zip(brushes, panel.shown["labels"]) if c == first)
    assert "circle" in panel.legend.text()


def test_refresh_updates_in_place(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    result = projections(cnn_run)
    panel.receive(done(result, 3))
    items = list(panel.grid.ci.items)
    scatters = list(panel.scatters)
    moved = {k: dataclasses.replace(v, points=v.points * 2) for k, v in result.items()}
    panel.run_now()
    panel.receive(done(moved, 9))
    assert list(panel.grid.ci.items) == items and panel.scatters == scatters
    assert np.allclose(panel.scatters[-1].getData()[0], result["head"].points[:, 0] * 2)
    assert "step 9" in panel.caption.text()


def test_picking_a_point_rings_it_everywhere(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    result = projections(cnn_run)
    panel.receive(done(result, 3))
    k = panel.names.index("fc.relu")
    plot, pts = panel.plots[k], result["fc.relu"].points
    target = int(np.argmax(pts[:, 0]))  # the rightmost point: nothing on top of it
    scene = plot.vb.mapViewToScene(QPointF(float(pts[target, 0]), float(pts[target, 1])))
    qtbot.mouseClick(panel.grid.viewport(), Qt.MouseButton.LeftButton, pos=panel.grid.mapFromScene(scene))
    assert panel.picked == target and panel.shown["picked"] == target
    for name, ring in zip(panel.names, panel.rings):
        x, y = ring.getData()
        assert list(x) == pytest.approx([result[name].points[target, 0]])
        assert list(y) == pytest.approx([result[name].points[target, 1]])
    true = cnn_run.info.class_names[int(cnn_run.info.analysis_labels[target])]
    assert f"#{target}" in panel.caption.text() and true in panel.caption.text()


def test_probe_sample_selection_is_followed_and_written(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel.receive(done(projections(cnn_run), 3))
    probe = cnn_run.info.probe_indices
    panel_context.selection.set(sample=2)
    assert panel.picked == int(probe[2])
    panel.pick(int(probe[5]))  # a probe-batch sample: selected everywhere
    assert panel_context.selection.sample == 5


def test_clicking_a_plot_selects_its_layer(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel.receive(done(projections(cnn_run), 3))
    k = panel.names.index("block2.pool")
    title = panel.plots[k].titleLabel.sceneBoundingRect().center()
    qtbot.mouseClick(panel.grid.viewport(), Qt.MouseButton.LeftButton, pos=panel.grid.mapFromScene(title))
    assert panel_context.selection.layer == "block2.pool"
    assert panel.plots[k].vb.border.color() == SELECTED_PEN.color()
    assert panel.plots[0].vb.border.color() != SELECTED_PEN.color()
    assert "<b>" in panel.plots[k].titleLabel.text


def test_dense_model_errors_and_cancel(qtbot, panel_context, mlp_run):
    panel = panel_for(qtbot, panel_context, mlp_run)
    panel.receive(JobUpdate(NAME, 1, "error", message="RuntimeError: out of memory",
                            tag={"step": 3, "kind": KIND, "samples": SAMPLES}))
    assert "out of memory" in panel.controls.status.label.text() and "out of memory" in panel.body.message.text()
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        qtbot.mouseClick(panel.controls.status.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME, KIND, {"samples": SAMPLES}]
    with qtbot.waitSignal(panel.analysis_cancelled):
        qtbot.mouseClick(panel.controls.status.cancel_button, Qt.MouseButton.LeftButton)
    result = projections(mlp_run)
    panel.receive(JobUpdate(NAME, 1, "done", result=result, tag={"step": 3, "kind": KIND, "samples": 100}))
    assert "points" not in panel.shown  # an answer to another request
    panel.receive(done(result, 3))
    assert set(panel.shown["points"]) == {"input", *mlp_run.info.layer_names}
    assert panel.shown["points"]["input"].shape == (len(mlp_run.info.analysis_labels), 2)


def test_a_deep_model_scrolls_instead_of_shrinking_its_plots(qtbot, panel_context, cnn_run):
    from visualizer.stream.frames import LayerInfo
    from visualizer.ui.panels.representations import MIN_CELL_PX

    panel = panel_for(qtbot, panel_context, cnn_run)
    deep = dataclasses.replace(cnn_run.info, layers=[LayerInfo(f"block{i}.conv", "Conv2d", (8, 4, 4), 10) for i in range(27)])
    panel.set_run(deep)
    projection = projections(cnn_run)["input"]
    panel.receive(done({n: projection for n in ["input", *deep.layer_names]}, 1))
    qtbot.waitUntil(lambda: all(p.geometry().height() > 0 for p in panel.plots))
    assert len(panel.plots) == 28
    viewport = panel.scroll.viewport()
    for plot in panel.plots:  # none squeezed below the minimum; the rows that do not fit scroll
        assert plot.geometry().width() >= MIN_CELL_PX - 10 and plot.geometry().height() >= MIN_CELL_PX - 10
    assert panel.grid.height() > viewport.height() and panel.scroll.verticalScrollBar().maximum() > 0
    columns = panel._columns
    assert columns * MIN_CELL_PX <= viewport.width()
    panel.resize(1400, 480)  # wider: more columns, fewer rows
    qtbot.waitUntil(lambda: panel._columns > columns)
    assert panel.grid.minimumHeight() < 28 // columns * MIN_CELL_PX + MIN_CELL_PX


def test_a_shallow_model_fills_the_panel_without_scrolling(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel.receive(done(projections(cnn_run), 1))
    qtbot.waitUntil(lambda: all(p.geometry().height() > 0 for p in panel.plots))
    assert panel.scroll.verticalScrollBar().maximum() == 0
    assert panel.grid.height() == panel.scroll.viewport().height()
