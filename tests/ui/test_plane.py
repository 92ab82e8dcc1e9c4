"""PlanePanel: the decision regions are the frame's plane probabilities coloured by predicted
class, the unit maps are the frame's hidden-unit outputs, clicks select layer/unit and
sample, and image data gets a short note instead."""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import show_panel
from visualizer.ui.panels.plane import NOT_2D, PlanePanel
from visualizer.ui.widgets.colormaps import class_color


def linked(qtbot, context, run):
    panel = show_panel(qtbot, PlanePanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def test_regions_are_predicted_classes_paler_when_unsure(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    probs = mlp_run.frame.plane["probs"]
    assert np.array_equal(panel.shown["probs"], probs)
    assert np.array_equal(panel.shown["classes"], probs.argmax(-1))
    regions = panel.shown["regions"]
    assert regions.shape == probs.shape[:2] + (3,)
    assert np.array_equal(panel.regions.image, regions)  # what the image item holds
    # each cell is its predicted class colour blended with white: the colour it is closest
    # to in direction is the argmax class, and surer cells are further from white
    faded = 255.0 - regions.reshape(-1, 3)
    bases = 255.0 - np.array([class_color(k) for k in range(probs.shape[-1])], dtype=float)
    cos = faded @ bases.T / (np.linalg.norm(faded, axis=1, keepdims=True) * np.linalg.norm(bases, axis=1))
    assert np.array_equal(cos.argmax(1), probs.argmax(-1).reshape(-1))
    assert np.allclose(cos.max(1), 1.0, atol=1e-4)
    strength = np.linalg.norm(faded, axis=1) / np.linalg.norm(bases[probs.argmax(-1).reshape(-1)], axis=1)
    conf = probs.max(-1).reshape(-1)
    order = np.argsort(conf)
    assert np.all(np.diff(strength[order]) >= -1e-4)
    # the image covers the probed extent (grid points are cell centres)
    xmin, xmax, ymin, ymax = mlp_run.frame.plane["extent"]
    assert np.allclose(panel.shown["extent"], (xmin, xmax, ymin, ymax))
    rect = panel.regions.mapRectToParent(panel.regions.boundingRect())
    assert xmin > rect.left() and xmax < rect.right() and ymin > rect.top() and ymax < rect.bottom()


def test_training_points_legend_and_probe_ring(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    info = mlp_run.info
    assert len(panel.point_items) == len(info.class_names)
    for k, scatter in enumerate(panel.point_items):
        x, y = scatter.getData()
        mine = info.points[info.point_labels == k]
        assert np.allclose(np.c_[x, y], mine)
    for name in info.class_names:
        assert name in panel.legend.text()
    panel_context.selection.set(sample=3)
    ring_x, ring_y = panel.ring.getData()
    assert np.allclose([ring_x[0], ring_y[0]], info.probe_inputs[3])
    assert "probe sample 3" in panel.caption.text()
    assert info.class_names[int(info.probe_labels[3])] in panel.caption.text()


def test_unit_maps_equal_frame_units(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    units = mlp_run.frame.plane["units"]
    assert panel.unit_layers == ["hidden1.relu", "hidden2.relu"]  # each hidden block's output, not the head
    for name in panel.unit_layers:
        assert np.array_equal(panel.shown["units"][name], units[name][:8])
        assert panel.shown["unit_scale"][name] == np.abs(units[name][:8]).max()
    # the tile of (layer 1, unit 5) in the grid image is that unit's map, y pointing up, scaled per layer
    r = units["hidden2.relu"].shape[-1]
    index = panel.tile_index(1, 5)
    cols = len(panel.unit_layers) if panel.layer_columns else 8
    row, col = divmod(index, cols)
    tile = panel.units.image.image[row * (r + 1): row * (r + 1) + r, col * (r + 1): col * (r + 1) + r]
    assert np.allclose(tile, units["hidden2.relu"][5, ::-1] / panel.shown["unit_scale"]["hidden2.relu"])
    # a layer of the same block (same units) highlights that block; the output layer adds its maps
    panel_context.selection.set(layer="hidden2.linear", channel=4)
    assert panel.highlighted_layer() == "hidden2.relu"
    assert panel.layer_box.isVisible() and panel.units.box.isVisible()
    panel_context.selection.set(layer="head")
    assert panel.unit_layers == ["hidden1.relu", "hidden2.relu", "head"]
    assert np.array_equal(panel.shown["units"]["head"], units["head"])


def test_clicks_select_unit_and_sample(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    panel.units.tile_clicked.emit(panel.tile_index(0, 3))
    assert (panel_context.selection.layer, panel_context.selection.channel) == ("hidden1.relu", 3)
    assert panel.units.box.isVisible() and panel.layer_box.isVisible()
    # a real click on a probe point selects that sample
    probe = mlp_run.info.probe_inputs[5]
    assert panel.pick_sample_at(float(probe[0]), float(probe[1])) == 5
    vb = panel.plane.getPlotItem().vb
    pos = panel.plane.mapFromScene(vb.mapViewToScene(QPointF(float(probe[0]), float(probe[1]))))
    qtbot.mouseClick(panel.plane.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert panel_context.selection.sample == 5
    ring_x, ring_y = panel.ring.getData()
    assert np.allclose([ring_x[0], ring_y[0]], probe)


def test_unit_maps_follow_panel_shape(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    panel.resize(420, 800)  # tall: unit maps below the plane, one row per layer
    qtbot.waitUntil(lambda: not panel.layer_columns)
    panel.units.tile_clicked.emit(panel.tile_index(1, 2))
    assert (panel_context.selection.layer, panel_context.selection.channel) == ("hidden2.relu", 2)
    assert panel.tile_index(1, 2) == 8 + 2
    r = mlp_run.frame.plane["units"]["hidden2.relu"].shape[-1]
    tile = panel.units.image.image[r + 1: 2 * r + 1, 2 * (r + 1): 2 * (r + 1) + r]
    assert np.allclose(tile, mlp_run.frame.plane["units"]["hidden2.relu"][2, ::-1] / panel.shown["unit_scale"]["hidden2.relu"])


def test_image_data_gets_a_note(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    assert not panel.is_planar() and panel.body.showing_message
    assert panel.body.message.text() == NOT_2D
    assert panel.shown == {}


def test_before_any_frame(qtbot, panel_context, mlp_run):
    panel = PlanePanel(panel_context)
    qtbot.addWidget(panel)
    panel.render(None)  # no run
    panel.set_run(mlp_run.info)
    panel.render(None)  # no frame yet
    assert "appear with the first captured frame" in panel.caption.text()
    assert panel.unit_layers == [] and not panel.body.showing_message
    panel.render(mlp_run.frame)
    assert np.array_equal(panel.shown["probs"], mlp_run.frame.plane["probs"])
    assert panel.unit_layers == ["hidden1.relu", "hidden2.relu"]


def test_odd_plane_data_does_not_raise(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    plane = dict(mlp_run.frame.plane)
    plane["probs"] = np.full_like(plane["probs"], np.nan)  # a run that blew up
    plane["units"] = {"hidden1.relu": np.full((4, 64, 64), np.nan, np.float32)}
    panel.render(dataclasses.replace(mlp_run.frame, plane=plane))
    assert np.all(np.isfinite(panel.shown["regions"]))
    assert panel.unit_layers == ["hidden1.relu"] and panel.shown["unit_scale"]["hidden1.relu"] == 1.0
    panel.render(dataclasses.replace(mlp_run.frame, plane={**plane, "units": {}}))
    assert panel.unit_layers == [] and "Nothing to show" in panel.units_caption.text()


def test_a_narrow_pane_beside_the_plane_gets_one_column_per_layer(qtbot, panel_context, mlp_run):
    """Wide and low (the default dock): rows of eight would make small maps, so layers become columns,
    whose maps are clearly larger than rows would give."""
    panel = linked(qtbot, panel_context, mlp_run)
    panel.resize(640, 330)
    qtbot.waitUntil(lambda: panel.splitter.orientation() == Qt.Orientation.Horizontal and panel.layer_columns)
    layers, units = len(panel.unit_layers), 8
    width, height = panel.units.width() - 80, panel.units.height()
    as_rows = min((width - 75) / units, (height - 25) / layers)
    as_columns = min((width - 35) / layers, (height - 45) / units)
    assert as_columns > 1.25 * as_rows
