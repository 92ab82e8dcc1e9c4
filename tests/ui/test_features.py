"""FeatureVisPanel: Visualise asks for the selected channel, the live trace and the final
image and trace are the real optimisation's, a changed selection marks the image stale
without asking again, the gallery shows every conv layer in forward order and clicks select,
old answers are ignored, errors are shown, and 2-D inputs say why there is nothing to draw."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.capture import hierarchy
from visualizer.capture.jobs import JobUpdate, run_job
from visualizer.ui.panels.features import GALLERY_CHANNELS, STEPS, FeatureVisPanel, conv_layers
from visualizer.ui.widgets.rgb_images import as_rgb

SHORT = 12  # optimisation steps for the results fed here (the request asks for STEPS)


def linked(qtbot, context, run):
    panel = show_panel(qtbot, FeatureVisPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def visualise(qtbot, panel):
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        qtbot.mouseClick(panel.vis_status.run_button, Qt.MouseButton.LeftButton)
    return blocker.args


def optimise(run, layer, channel):
    """A real activation maximisation on the fixture's model, with its progress updates."""
    progress = []
    job = hierarchy.activation_maximisation_job(run.session.trainer.model, layer, channel,
                                                run.info.input_shape, steps=SHORT)
    return run_job(job, None, progress.append), progress


def test_visualise_shows_live_trace_then_image(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    asked = []
    panel.analysis_requested.connect(lambda *a: asked.append(a))
    panel_context.selection.set(layer="block2.conv", channel=3)
    assert asked == []  # expensive: never asked for without a click
    args = visualise(qtbot, panel)
    params = {"layer": "block2.conv", "channel": 3, "steps": STEPS}
    assert args == ["feature_vis", "feature_vis", params]
    assert panel.vis_status.cancel_button.isEnabled()
    result, progress = optimise(cnn_run, "block2.conv", 3)
    tag = {"step": cnn_run.frame.step, "kind": "feature_vis", **params}
    for p in progress[:5]:
        panel.receive(JobUpdate("feature_vis", 3, "running", p.done, p.total, p.message, p.data, tag=tag))
    assert np.allclose(panel.shown["live_trace"], [p.data for p in progress[:5]])
    assert np.allclose(panel.trace.yData, panel.shown["live_trace"])
    assert f"activation {progress[4].data:.3f}" in panel.vis_status.label.text()
    assert panel.vis_status.bar.value() == int(1000 * 5 / SHORT)
    panel.receive(JobUpdate("feature_vis", 3, "done", SHORT, SHORT, result=result, tag=tag))
    shown = panel.shown
    assert shown["layer"] == "block2.conv" and shown["channel"] == 3
    assert np.array_equal(shown["image"], result.image) and result.image.shape == (32, 32, 3)
    assert np.array_equal(shown["trace"], result.trace) and np.allclose(panel.trace.yData, result.trace)
    assert np.allclose(panel.image.image.image, result.image)
    text = panel.caption.text()
    assert "block2.conv</b> channel 3" in text and "optimised from noise" in text
    assert "jitter and blur" in text and "mean activation" in text
    assert not shown["stale"] and panel.image.image.opacity() == 1.0


def test_selection_change_marks_the_image_stale(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block1.conv", channel=1)
    args = visualise(qtbot, panel)
    result, _ = optimise(cnn_run, "block1.conv", 1)
    tag = {"step": 3, "kind": "feature_vis", **args[2]}
    panel.receive(JobUpdate("feature_vis", 1, "done", result=result, tag=tag))
    asked = []
    panel.analysis_requested.connect(lambda *a: asked.append(a))
    panel_context.selection.set(channel=None)
    assert asked == []
    assert panel.shown["stale"] and panel.image.image.opacity() < 1.0
    text = panel.caption.text()
    assert "Selection changed: press Visualise" in text
    assert "channel 0 (click a channel in Activations or Filters to choose)" in text
    assert np.array_equal(panel.shown["image"], result.image)  # the old image is still there, dimmed
    assert visualise(qtbot, panel)[2] == {"layer": "block1.conv", "channel": 0, "steps": STEPS}
    panel.receive(JobUpdate("feature_vis", 1, "done", result=result, tag=tag))  # an older answer
    assert panel.shown["stale"]
    with qtbot.waitSignal(panel.analysis_cancelled) as blocker:
        qtbot.mouseClick(panel.vis_status.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["feature_vis"]
    tag = {"step": 3, "kind": "feature_vis", "layer": "block1.conv", "channel": 0, "steps": STEPS}
    panel.receive(JobUpdate("feature_vis", 2, "error", message="RuntimeError: out of memory", tag=tag))
    assert "out of memory" in panel.vis_body.message.text() and panel.vis_body.showing_message


def test_gallery_rows_are_conv_layers_in_order_and_clicks_select(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    convs = conv_layers(cnn_run.info)
    assert len(convs) >= 2
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        qtbot.mouseClick(panel.gallery_status.run_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["gallery", "gallery", {"channels": GALLERY_CHANNELS}]
    job = hierarchy.layer_gallery_job(cnn_run.session.trainer.model, convs, cnn_run.info.input_shape,
                                      channels=GALLERY_CHANNELS, steps=3)
    result = run_job(job)
    panel.receive(JobUpdate("gallery", 1, "done", result=result, tag={"step": 5, "kind": "gallery", "channels": 4}))
    gallery = panel.shown["gallery"]
    assert list(gallery) == convs
    for name in convs:
        assert len(gallery[name]) == GALLERY_CHANNELS
        for shown, vis in zip(gallery[name], result[name]):
            assert np.array_equal(shown, vis.image)
    h = result[convs[0]][0].image.shape[0]
    assert np.allclose(panel.gallery.image.image[:h, :h], as_rgb(result[convs[0]][0].image))
    rows = [label for _, label in panel.gallery.plot.getAxis("left")._tickLevels[0]]
    assert rows == convs
    panel.gallery.tile_clicked.emit(GALLERY_CHANNELS + 2)  # second row, third column
    assert (panel_context.selection.layer, panel_context.selection.channel) == (convs[1], 2)
    assert panel.shown["gallery_mark"] == GALLERY_CHANNELS + 2 and panel.gallery.box.isVisible()
    assert "weights of step 5" in panel.gallery_caption.text()


def test_dense_unit_on_images_and_no_conv_gallery(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="fc.relu", channel=2)
    args = visualise(qtbot, panel)
    assert args[2] == {"layer": "fc.relu", "channel": 2, "steps": STEPS}
    result, _ = optimise(cnn_run, "fc.relu", 2)
    panel.receive(JobUpdate("feature_vis", 1, "done", result=result, tag={"step": 1, "kind": "feature_vis", **args[2]}))
    assert np.array_equal(panel.shown["image"], result.image) and "fc.relu</b> unit 2" in panel.caption.text()
    panel.receive(JobUpdate("gallery", 1, "error", message="ValueError: no layers",
                            tag={"step": 1, "kind": "gallery", "channels": 4}))
    assert "gallery_error" not in panel.shown  # never asked for: not ours to show


def test_plane_inputs_say_feature_visualisation_needs_images(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    assert panel.body.showing_message
    assert "needs image inputs" in panel.body.message.text() and "2-D point" in panel.body.message.text()
    assert not panel.vis_status.run_button.isEnabled() and not panel.gallery_status.run_button.isEnabled()
    asked = []
    panel.analysis_requested.connect(lambda *a: asked.append(a))
    panel.visualise()
    panel.run_gallery()
    panel_context.selection.set(layer=mlp_run.info.layers[0].name, channel=1)
    assert asked == []
