"""TopExamplesPanel: requests follow the selection, the shown crops, values and classes are
the real analysis result, old answers are ignored, errors are shown, Cancel is passed on,
auto-refresh asks again only after a while and a new step, and non-image inputs get bars."""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.capture.jobs import JobUpdate, run_job
from visualizer.capture.session import analysis_job
from visualizer.ui.panels.top_examples import REFRESH_S, TopExamplesPanel
from visualizer.ui.widgets.rgb_images import as_rgb

NAME = "top_examples"


def linked(qtbot, context, run):
    panel = show_panel(qtbot, TopExamplesPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def answer(panel, run, layer, channel, state="done", **extra):
    """Compute the analysis the panel asked for on the fixture's session and deliver it."""
    params = {"layer": layer, "channel": channel}
    result = run_job(analysis_job(run.session, "top_examples", params)) if state == "done" else None
    tag = {"step": run.frame.step, "kind": "top_examples", **params}
    panel.receive(JobUpdate(NAME, 7, state, 2, 2, result=result, tag=tag, **extra))
    return result


def test_selection_requests_and_real_crops_are_shown(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    first = cnn_run.info.layers[0].name
    assert panel.requested[NAME] == {"kind": "top_examples", "layer": first, "channel": 0}  # asked on first render
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel_context.selection.set(layer="block2.relu", channel=5)
    assert blocker.args == [NAME, "top_examples", {"layer": "block2.relu", "channel": 5}]
    result = answer(panel, cnn_run, "block2.relu", 5)
    shown = panel.shown
    assert shown["layer"] == "block2.relu" and shown["channel"] == 5
    assert np.array_equal(shown["crops"], result.crops) and shown["crops"].shape[0] == 9
    assert np.array_equal(shown["indices"], result.indices)
    assert np.array_equal(shown["values"], result.values)
    assert np.all(np.diff(shown["values"]) <= 0)  # strongest first
    assert np.array_equal(shown["labels"], cnn_run.info.analysis_labels[result.indices])
    size = result.crops.shape[1]
    assert np.allclose(panel.grid.image.image[:size, :size], as_rgb(result.crops[0]))  # the top-left tile
    first_label = cnn_run.info.class_names[shown["labels"][0]]
    assert panel.labels[0].toPlainText() == f"{result.values[0]:.2f} · {first_label}"
    rf = int((result.boxes[:, 1] - result.boxes[:, 0]).max())
    text = panel.caption.text()
    assert "block2.relu</b> channel 5" in text and f"its receptive field, {rf}×{rf} px" in text
    assert "click a channel" not in text
    assert "done" in panel.status.label.text() and not panel.status.cancel_button.isEnabled()


def patch_from_crop(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """Undo the nearest-neighbour enlargement of a (S, S, C) crop back to (height, width, C) pixels."""
    s_h, s_w = crop.shape[:2]
    rows = np.minimum(np.ceil(np.arange(height) * s_h / max(1, height)).astype(int), s_h - 1)
    cols = np.minimum(np.ceil(np.arange(width) * s_w / max(1, width)).astype(int), s_w - 1)
    return crop[rows][:, cols]


def test_clicking_a_crop_shows_where_it_lies(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block2.relu", channel=1)
    result = answer(panel, cnn_run, "block2.relu", 1)
    assert panel.shown["focus"] == 0 and panel.full_row.isVisible() and panel.grid.box.isVisible()
    panel.grid.tile_clicked.emit(3)
    top, bottom, left, right = result.boxes[3]
    assert panel.shown["focus"] == 3 and np.array_equal(panel.shown["box"], result.boxes[3])
    full = panel.shown["full"]
    scale = full.shape[0] // cnn_run.info.input_shape[1]
    region = as_rgb(result.images[3])[top:bottom, left:right]
    assert np.allclose(patch_from_crop(as_rgb(result.crops[3]), bottom - top, right - left), region)  # the crop is that region
    inner = full[top * scale + 2:bottom * scale - 2:scale, left * scale + 2:right * scale - 2:scale]
    assert inner.shape[0] >= 4 and np.allclose(inner, region[: inner.shape[0], : inner.shape[1]])  # the whole input shown
    assert f"#{result.indices[3]} of the pool" in panel.full_caption.text()
    assert (panel_context.selection.layer, panel_context.selection.channel) == ("block2.relu", 1)  # unchanged


def test_default_channel_dense_layer_and_no_box(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel_context.selection.set(layer="fc.relu")
    assert blocker.args[2] == {"layer": "fc.relu", "channel": 0}
    result = answer(panel, cnn_run, "fc.relu", 0)
    h, w = cnn_run.info.input_shape[1:]
    assert (result.boxes == [0, h, 0, w]).all()  # a dense unit sees the whole image
    assert np.array_equal(panel.shown["crops"], result.crops)
    text = panel.caption.text()
    assert "unit 0 (click a channel in Activations or Filters to choose)" in text
    assert f"the whole {h}×{w} input" in text
    assert not panel.full_row.isVisible()  # nothing to locate


def test_old_answers_ignored_errors_shown_cancel_passed_on(qtbot, panel_context, cnn_run):
    panel = linked(qtbot, panel_context, cnn_run)
    panel_context.selection.set(layer="block2.relu", channel=5)
    result = answer(panel, cnn_run, "block2.relu", 5)
    panel_context.selection.set(channel=6)
    answer(panel, cnn_run, "block2.relu", 5)  # the answer to the request before: dropped
    assert panel.shown["channel"] == 5 and np.array_equal(panel.shown["indices"], result.indices)
    assert panel.status.running and panel.status.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.analysis_cancelled) as blocker:
        qtbot.mouseClick(panel.status.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME]
    answer(panel, cnn_run, "block2.relu", 6, state="error", message="ValueError: boom")
    assert "boom" in panel.body.message.text() and panel.body.showing_message
    assert "failed: ValueError: boom" in panel.status.label.text()
    panel_context.selection.set(channel=10_000)  # beyond the layer's channels: said, not asked
    assert "is not one of them" in panel.body.message.text()
    assert panel.requested[NAME]["channel"] == 6


def test_auto_refresh_waits_for_time_and_a_new_step(qtbot, panel_context, cnn_run):
    now = [1000.0]
    panel = linked(qtbot, panel_context, cnn_run)
    panel.clock = lambda: now[0]
    asked = []
    panel.analysis_requested.connect(lambda *args: asked.append(args))
    panel_context.selection.set(layer="block2.relu", channel=2)
    answer(panel, cnn_run, "block2.relu", 2)
    assert len(asked) == 1
    frame = cnn_run.frame
    later = dataclasses.replace(frame, step=frame.step + 5)
    now[0] += 1.0
    panel.render(later)
    assert len(asked) == 1  # too soon, but it will look again even if no frame comes
    assert panel._later.isActive() and panel._later.remainingTime() <= 1000 * REFRESH_S
    now[0] += REFRESH_S
    panel.render(frame)
    assert len(asked) == 1  # the weights have not changed
    panel.render(later)
    assert asked[-1] == (NAME, "top_examples", {"layer": "block2.relu", "channel": 2}) and len(asked) == 2
    now[0] += REFRESH_S
    panel.render(dataclasses.replace(frame, step=frame.step + 9))
    assert len(asked) == 2  # the previous job has not answered yet
    answer(panel, cnn_run, "block2.relu", 2)
    panel.auto.setChecked(False)
    panel.render(dataclasses.replace(frame, step=frame.step + 9))
    assert len(asked) == 2
    with qtbot.waitSignal(panel.analysis_requested):
        qtbot.mouseClick(panel.status.run_button, Qt.MouseButton.LeftButton)  # Run now always works


def test_plane_inputs_listed_as_bars(qtbot, panel_context, mlp_run):
    panel = linked(qtbot, panel_context, mlp_run)
    layer = mlp_run.info.layers[1].name
    panel_context.selection.set(layer=layer, channel=3)
    result = answer(panel, mlp_run, layer, 3)
    assert result.crops is None
    assert panel.shown["crops"] is None and panel.pages.currentIndex() == 1
    assert np.array_equal(panel.shown["indices"], result.indices)
    assert np.array_equal(panel.shown["values"], result.values)
    labels = mlp_run.info.analysis_labels[result.indices]
    assert np.array_equal(panel.shown["labels"], labels)
    assert np.allclose(panel.bars.opts["width"], np.abs(result.values))
    ticks = panel.bars_plot.getPlotItem().getAxis("left")._tickLevels[0]
    assert ticks[0][1] == f"#{result.indices[0]} {mlp_run.info.class_names[labels[0]]}"
    assert "Receptive-field crops are for conv layers" in panel.caption.text()


def test_end_to_end_through_a_real_session(qtbot, panel_context):
    """The panel's request goes to a TrainingSession, runs in its analysis thread, and the
    update it posts (with the session's own tag) is the one the panel shows."""
    from tests.ui.conftest import _make_run
    from visualizer.capture import hierarchy

    run = _make_run("cnn", "shapes", {"channels": [4, 8], "hidden": 16}, {"n_train": 64, "n_val": 40}, steps=2)
    session = run.session
    try:
        panel = show_panel(qtbot, TopExamplesPanel, panel_context, run)
        panel_context.selection.changed.connect(panel.selection_changed)
        panel.analysis_requested.connect(session.request_analysis)
        panel.analysis_cancelled.connect(session.cancel_analysis)
        panel_context.selection.set(layer="block2.conv", channel=3)
        x, _ = session.analysis_set
        expected = hierarchy.top_examples(session.trainer.model, x, "block2.conv", 3)  # these weights...
        session.run(1)  # ...are the ones snapshotted: queued requests are applied before the step

        def delivered() -> bool:
            update = session.mailbox.take(f"analysis:{NAME}")
            if update is not None:
                panel.receive(update)
            return panel.shown.get("layer") == "block2.conv"

        qtbot.waitUntil(delivered, timeout=30_000)
        assert np.allclose(panel.shown["values"], expected.values)
        clear = expected.values > expected.values[-1]  # equal values may come in either order
        assert set(panel.shown["indices"][clear]) == set(expected.indices[clear])
        assert f"weights of step {session.trainer.step_count - 1:,}" in panel.caption.text()
    finally:
        session.close()
