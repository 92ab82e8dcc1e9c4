"""SamplesPanel: thumbnails or 2-D probe points with the frame's real predictions,
linked to the selection both ways."""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.ui.panels.samples import RIGHT, WRONG, SamplesPanel, grid_cells, image_rgb, rgb_qimage, thumbnail


def check_predictions(panel, run):
    probs = run.frame.probe.probs
    assert np.allclose(panel.shown["probs"], probs)
    assert np.array_equal(panel.shown["predicted"], probs.argmax(1))
    assert np.array_equal(panel.shown["labels"], run.info.probe_labels)
    right = int(np.sum(probs.argmax(1) == run.info.probe_labels))
    assert f"{right} of {len(run.info.probe_labels)} probe samples" in panel.header.text()


def test_thumbnails_show_probe_images_and_predictions(qtbot, panel_context, cnn_run):
    panel = show_panel(qtbot, SamplesPanel, panel_context, cnn_run)
    info = cnn_run.info
    check_predictions(panel, cnn_run)
    assert panel.pages.currentWidget() is panel.grid
    assert panel.thumbs.rowCount() == len(info.probe_labels)
    probs = cnn_run.frame.probe.probs
    for i in range(len(info.probe_labels)):
        index = panel.thumbs.index(i)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        k = int(probs[i].argmax())
        assert info.class_names[int(info.probe_labels[i])] in text
        assert f"{info.class_names[k]} {100 * probs[i, k]:.0f}%" in text
        color = index.data(Qt.ItemDataRole.ForegroundRole).color()
        assert color == (RIGHT if k == info.probe_labels[i] else WRONG)
    # the thumbnail is the probe image itself, enlarged with nearest neighbour
    image = panel.thumbs.index(2).data(Qt.ItemDataRole.DecorationRole).toImage()
    scale = image.width() / info.probe_inputs.shape[-1]
    assert image.width() == image.height() and scale >= 1
    pixel = image.pixelColor(int(5.5 * scale), int(7.5 * scale))  # row 7, column 5 of the original
    rgb = np.round(info.probe_inputs[2][:, 7, 5] * 255)
    assert np.allclose([pixel.red(), pixel.green(), pixel.blue()], rgb, atol=1)
    assert panel.thumbs.index(2).data(Qt.ItemDataRole.ToolTipRole).startswith("sample 2 (true: ")


def test_click_and_selection_follow(qtbot, panel_context, cnn_run):
    panel = show_panel(qtbot, SamplesPanel, panel_context, cnn_run)
    selection = panel_context.selection
    rect = panel.grid.visualRect(panel.thumbs.index(3))
    qtbot.mouseClick(panel.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selection.sample == 3

    selection.set(sample=5)  # from another panel
    panel.selection_changed(frozenset({"sample"}))
    assert panel.grid.currentIndex().row() == 5
    assert [i.row() for i in panel.grid.selectionModel().selectedIndexes()] == [5]
    assert int(panel.shown["selected"]) == 5 and "sample 5" in panel.caption.text()
    assert selection.sample == 5


def test_plane_data_shows_points_and_list(qtbot, panel_context, mlp_run):
    panel = show_panel(qtbot, SamplesPanel, panel_context, mlp_run)
    info = mlp_run.info
    check_predictions(panel, mlp_run)
    assert panel.pages.currentWidget() is panel.split
    x, y = panel.points.getData()
    assert np.allclose(np.c_[x, y], info.probe_inputs)
    assert len(panel.background.getData()[0]) == len(info.points)
    assert panel.list_model.index(1, 1).data() == f"{info.probe_inputs[1, 0]:+.2f}"

    selection = panel_context.selection
    spot = panel.points.points()[4]
    panel.points.sigClicked.emit(panel.points, [spot], None)
    assert selection.sample == 4
    rect = panel.table.visualRect(panel.list_model.index(6, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selection.sample == 6

    selection.set(sample=2)
    panel.selection_changed(frozenset({"sample"}))
    assert panel.table.currentIndex().row() == 2
    rx, ry = panel.ring.getData()
    assert np.allclose([rx[0], ry[0]], info.probe_inputs[2])


def test_no_frame_grayscale_and_missing_probe(qtbot, panel_context, cnn_run):
    gray = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    run = replace(cnn_run, info=replace(cnn_run.info, probe_inputs=gray, probe_labels=np.arange(4)))
    panel = show_panel(qtbot, SamplesPanel, panel_context, run)  # the frame's 8 probs do not fit 4 samples
    assert panel.shown["probs"].shape == (4, 0)
    assert "no predictions" in panel.header.text()
    image = panel.thumbs.index(1).data(Qt.ItemDataRole.DecorationRole).toImage()
    f = image.width() // 8  # 8x8 digits are enlarged by a whole factor
    assert f >= 5 and image.width() == 8 * f
    assert image.pixelColor(f * 3 + f - 1, f * 2).red() == round(gray[1, 0, 2, 3] * 255)
    assert image.pixelColor(f * 3, f * 2 + f - 1).green() == round(gray[1, 0, 2, 3] * 255)
    panel.render(None)
    assert "No predictions yet" in panel.header.text()

    no_probe = copy.copy(cnn_run.frame)
    no_probe.probe = None
    panel.render(no_probe)
    assert np.array_equal(panel.shown["predicted"], np.full(4, -1))


def test_thumbnails_stay_sharp_and_fit(qtbot):
    img = np.random.default_rng(1).random((3, 8, 8)).astype(np.float32)
    rgb = image_rgb(img)
    assert np.array_equal(rgb, np.round(np.transpose(img, (1, 2, 0)) * 255).astype(np.uint8))
    big = thumbnail(rgb_qimage(rgb), 70).toImage()
    assert big.width() == 64  # a whole factor: 8 times
    pixel = big.pixelColor(8 * 6 + 3, 8 * 1 + 3)
    assert [pixel.red(), pixel.green(), pixel.blue()] == list(rgb[1, 6])
    assert thumbnail(rgb_qimage(image_rgb(np.zeros((3, 224, 224)))), 64).width() == 64
    thumb, cell_w, cell_h = grid_cells(16, 310, 340, 14, 90)
    assert 40 <= thumb and (310 // cell_w) * (340 // cell_h) >= 16  # all 16 visible


def test_inputs_labelled_by_the_model_are_not_counted_as_right(qtbot, panel_context, cnn_run):
    run = replace(cnn_run, info=replace(cnn_run.info, labels_from_model=True))
    panel = show_panel(qtbot, SamplesPanel, panel_context, run)
    assert "without true labels" in panel.header.text() and "right (" not in panel.header.text()
