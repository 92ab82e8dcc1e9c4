"""ActivationsPanel: the displayed maps are the frame's maps for the selected layer and
sample, the panel follows the selection, and clicks on tiles and strip items write it."""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import show_panel
from visualizer.ui.panels.activations import DIVERGING, UNIT_CELL, ActivationsPanel
from visualizer.ui.widgets.colormaps import SEQUENTIAL
from visualizer.ui.widgets.image_strip import HIGHLIGHT_CSS


def linked(qtbot, context, run):
    """The panel, with selection changes delivered as the main window does."""
    panel = show_panel(qtbot, ActivationsPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def click_tile(qtbot, grid, index: int) -> None:
    """A real left click in the middle of tile ``index`` of an ImageGrid."""
    h, w, rows, cols, pad = grid._geom
    r, c = divmod(index, cols)
    scene = grid.plot.vb.mapViewToScene(QPointF(c * (w + pad) + w / 2, r * (h + pad) + h / 2))
    qtbot.mouseClick(grid.view.viewport(), Qt.MouseButton.LeftButton, pos=grid.view.mapFromScene(scene))


def test_conv_maps_are_the_frames_maps_on_a_batch_wide_scale(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    act = cnn_run.frame.activations["block1.conv"]
    assert panel.shown["layer"] == "block1.conv" and panel.shown["sample"] == 0
    assert np.array_equal(panel.shown["maps"], act.maps[0])
    lo, hi = panel.shown["levels"]
    assert lo == -hi and hi == np.abs(act.maps).max()  # signed conv output: diverging around 0
    assert panel._cmap == DIVERGING
    h, w = act.maps.shape[2:]
    assert np.array_equal(panel.grid.image.image[:h, :w], act.maps[0, 0])  # what the image item holds
    assert np.array_equal(panel.grid.image.image[:h, w + 1 : 2 * w + 1], act.maps[0, 1])
    text = panel.caption.text()
    assert "block1.conv" in text and "sample 0" in text
    assert f"true: {cnn_run.info.class_names[cnn_run.info.probe_labels[0]]}" in text
    assert f"all {act.maps.shape[1]} channels" in text


def test_follows_sample_and_layer_with_fixed_levels(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    levels = panel.shown["levels"].copy()
    panel_context.selection.set(sample=3)
    act = cnn_run.frame.activations["block1.conv"]
    assert np.array_equal(panel.shown["maps"], act.maps[3])
    assert np.array_equal(panel.shown["levels"], levels)  # same scale for every sample of the layer
    assert "sample 3" in panel.caption.text()

    panel_context.selection.set(layer="block2.relu")
    relu = cnn_run.frame.activations["block2.relu"]
    assert panel.shown["layer"] == "block2.relu"
    assert np.array_equal(panel.shown["maps"], relu.maps[3])
    assert tuple(panel.shown["levels"]) == (0.0, relu.maps.max())  # non-negative: sequential from 0
    assert panel._cmap == SEQUENTIAL
    assert np.array_equal(panel.shown["probs"], cnn_run.frame.probe.probs[3])
    assert np.array_equal(panel.probs.probs, cnn_run.frame.probe.probs[3])


def test_dense_layer_shows_units_as_cells(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="fc.linear", sample=2)
    maps = cnn_run.frame.activations["fc.linear"].maps
    assert np.array_equal(panel.shown["maps"], maps[2])
    image = panel.grid.image.image
    assert np.allclose(image[:UNIT_CELL, :UNIT_CELL], maps[2, 0])
    assert np.allclose(image[:UNIT_CELL, UNIT_CELL + 1 : 2 * UNIT_CELL + 1], maps[2, 1])
    assert f"all {maps.shape[1]} units" in panel.caption.text()


def test_clicking_a_tile_selects_the_channel_and_highlights_it(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block1.relu")
    panel.grid.tile_clicked.emit(2)
    assert (panel_context.selection.layer, panel_context.selection.channel) == ("block1.relu", 2)
    assert panel.shown["channel"] == 2 and panel.grid.box.isVisible()
    click_tile(qtbot, panel.grid, 5)  # a real mouse click on tile 5
    assert panel_context.selection.channel == 5
    assert "selected: channel 5" in panel.caption.text()
    # the strip shows the selected channel at the selected layer
    assert "channel 5" in panel.strip.items[1 + cnn_run.info.layer_names.index("block1.relu")].toolTip()


def test_strip_runs_through_every_layer_and_selects_on_click(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    names = cnn_run.info.layer_names
    assert panel.shown["strip_layers"] == names
    assert len(panel.strip.items) == len(names) + 1  # the input, then every layer
    assert not panel.strip.items[1].image.pixmap().isNull()
    panel.strip.item_clicked.emit(4)
    assert panel_context.selection.layer == names[3]
    qtbot.mouseClick(panel.strip.items[7], Qt.MouseButton.LeftButton)
    assert panel_context.selection.layer == names[6]
    assert panel.shown["layer"] == names[6]
    assert HIGHLIGHT_CSS in panel.strip.items[7].styleSheet()
    assert HIGHLIGHT_CSS not in panel.strip.items[4].styleSheet()
    qtbot.mouseClick(panel.strip.items[0], Qt.MouseButton.LeftButton)  # the input is not a layer
    assert panel_context.selection.layer == names[6]


def test_plane_data_input_is_a_point_and_layers_are_dense(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    panel_context.selection.set(sample=4)
    layer = mlp_run.info.layers[0].name
    maps = mlp_run.frame.activations[layer].maps
    assert np.array_equal(panel.shown["maps"], maps[4])
    x, y = mlp_run.info.probe_inputs[4]
    assert panel.strip.items[0].image.text() == f"x₁={x:+.2f}\nx₂={y:+.2f}"
    assert len(panel.shown["probs"]) == len(mlp_run.info.class_names)
    panel.grid.tile_clicked.emit(7)
    assert (panel_context.selection.layer, panel_context.selection.channel) == (layer, 7)


def test_missing_layer_and_no_frame_do_not_raise(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    frame = dataclasses.replace(cnn_run.frame, activations={k: v for k, v in cnn_run.frame.activations.items() if k != "block1.conv"})
    panel.render(frame)
    assert "Nothing to show" in panel.body.message.text() and not panel.grid.isVisible()
    assert panel.strip.items[1].image.text() == "—"
    panel.render(cnn_run.frame)
    assert panel.grid.isVisible()
    panel.render(None)
    assert "No frame yet" in panel.body.message.text()
    panel.render(cnn_run.frame)  # the same frame again is drawn again
    assert panel.grid.isVisible() and np.array_equal(panel.shown["maps"], cnn_run.frame.activations["block1.conv"].maps[0])
