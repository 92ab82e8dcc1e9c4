"""FiltersPanel: the drawn kernels are the frame's filters (first layer by default, the
selected conv layer when it has kernels), clicks select layer and channel, and 2-D data
says why there is nothing to draw."""
from __future__ import annotations

import dataclasses

import numpy as np

from tests.ui.conftest import show_panel
from visualizer.ui.panels.filters import FiltersPanel, rgb_display, upscale


def linked(qtbot, context, run):
    panel = show_panel(qtbot, FiltersPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def test_first_layer_rgb_kernels_centred_on_grey(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    kernels = cnn_run.frame.filters["block1.conv"]
    assert kernels.ndim == 4 and kernels.shape[-1] == 3
    assert panel.shown["layer"] == "block1.conv"
    assert np.array_equal(panel.shown["kernels"], kernels)
    display = panel.shown["display"]
    factor = display.shape[1] // kernels.shape[1]
    assert factor > 1  # 3x3 kernels are enlarged
    peak = np.abs(kernels[0]).max()
    assert np.allclose(display[0, ::factor, ::factor], 0.5 + 0.5 * kernels[0] / peak)
    assert display.min() >= 0 and display.max() <= 1
    size = display.shape[1]
    assert np.allclose(panel.grid.image.image[:size, :size], display[0])  # what the image item holds
    assert not panel.grid.colorbar.isVisible()  # colour means input colour here, not a scale


def test_selected_deeper_conv_layer_shows_its_kernels(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block2.conv", channel=4)
    kernels = cnn_run.frame.filters["block2.conv"]
    assert panel.shown["layer"] == "block2.conv"
    assert np.array_equal(panel.shown["kernels"], kernels)
    lo, hi = panel.shown["levels"]
    assert lo == -hi and hi == np.abs(kernels).max()
    assert "averaged over input channels" in panel.caption.text()
    assert panel.shown["channel"] == 4 and panel.grid.box.isVisible()
    assert panel.grid.colorbar.isVisible()


def test_layer_without_kernels_falls_back_and_click_selects(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block2.relu", channel=1)
    assert panel.shown["layer"] == "block1.conv"
    assert np.array_equal(panel.shown["kernels"], cnn_run.frame.filters["block1.conv"])
    assert "block2.relu has no kernels; showing block1.conv" in panel.caption.text()
    assert panel.shown["channel"] is None  # channel 1 of block2.relu is not a kernel shown here
    panel.grid.tile_clicked.emit(3)
    assert (panel_context.selection.layer, panel_context.selection.channel) == ("block1.conv", 3)
    assert panel.shown["channel"] == 3 and panel.grid.box.isVisible()


def test_grey_input_shaped_weights_and_live_update(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel.render(None)
    assert "No frame yet" in panel.body.message.text() and not panel.grid.isVisible()
    rng = np.random.default_rng(0)
    grey = rng.normal(size=(6, 8, 8)).astype(np.float32)  # e.g. a first Linear layer on 8x8 grey images
    frame = dataclasses.replace(cnn_run.frame, step=cnn_run.frame.step + 1, filters={"block1.conv": grey})
    panel.render(frame)
    assert np.array_equal(panel.shown["kernels"], grey)
    factor = panel.shown["display"].shape[1] // 8
    assert np.array_equal(panel.shown["display"], upscale(grey, factor))
    assert tuple(panel.shown["levels"]) == (-np.abs(grey).max(), np.abs(grey).max())
    assert panel.grid.colorbar.isVisible()
    panel.render(cnn_run.frame)  # the next frame: back to the trained RGB kernels
    kernels = cnn_run.frame.filters["block1.conv"]
    assert np.array_equal(panel.shown["kernels"], kernels)
    factor = panel.shown["display"].shape[1] // kernels.shape[1]
    assert np.allclose(panel.shown["display"], upscale(rgb_display(kernels), factor))


def test_plane_data_says_why_there_are_no_filters(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    assert mlp_run.frame.filters == {}
    assert "no image-shaped filters for 2-d inputs" in panel.body.message.text().lower()
    assert panel.shown["layer"] is None and not panel.grid.isVisible()
    panel.render(None)
    assert "No frame yet" in panel.body.message.text()
