"""AttributionPanel: asks for the selected sample, target, layer and settings; shows the
arrays the job computed (heat maps over images, bars for 2-D data); live refresh; cancel,
errors and superseded answers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.capture.jobs import JobUpdate, run_job
from visualizer.capture.session import analysis_job
from visualizer.ui.panels.attribution import KIND, NAME, AttributionPanel
from visualizer.ui.widgets.attribution_views import TokenRow, normalised, signed_rgba


def panel_for(qtbot, context, run) -> AttributionPanel:
    panel = show_panel(qtbot, AttributionPanel, context, run)
    context.selection.changed.connect(panel.selection_changed)
    return panel


def answer(panel: AttributionPanel, run, job_id: int = 1) -> tuple[dict, JobUpdate]:
    """Run the panel's last request for real on the fixture's session and hand the result back."""
    params = dict(panel.requested[NAME])
    kind = params.pop("kind")
    result = run_job(analysis_job(run.session, kind, params))
    update = JobUpdate(NAME, job_id, "done", 1, 1, result=result, tag={"step": run.frame.step, "kind": kind, **params})
    panel.receive(update)
    return result, update


def test_first_frame_asks_for_the_selected_sample_and_shows_the_maps(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    asked = panel.requested[NAME]
    assert asked["kind"] == KIND and asked["samples"] == [0] and asked["target"] is None
    assert asked["methods"] == ["saliency", "integrated_gradients", "grad_cam"]
    assert asked["layer"] == "block1.conv"  # the selected layer is a conv layer: Grad-CAM uses it
    result, _ = answer(panel, cnn_run)
    shown = panel.shown
    assert shown["methods"] == asked["methods"] and shown["sample"] == 0
    for m in asked["methods"]:
        values = result[m]["values"][0]
        assert np.array_equal(shown["values"][m], values)
        per_pixel = values.sum(0)  # channels summed, scaled by the 99th percentile of |value|, clipped
        expected = np.clip(per_pixel / np.percentile(np.abs(per_pixel), 99), -1, 1)
        np.testing.assert_allclose(shown["maps"][m], expected, rtol=1e-5, atol=1e-7)
    # the heat map drawn over the input is exactly those values through the diverging map
    drawn = panel.overlay.overlays[2].image
    assert np.array_equal(drawn, signed_rgba(shown["maps"]["integrated_gradients"], panel.overlay.opacity))
    assert panel.shown["delta"] == pytest.approx(float(result["integrated_gradients"]["delta"][0]))
    assert "δ" in panel.note.text() and not panel.body.showing_message
    assert panel.overlay.colorbar is not None and panel.overlay.colorbar.values == (-1.0, 1.0)
    truth = cnn_run.info.class_names[int(cnn_run.info.probe_labels[0])]
    assert f"true: {truth}" in panel.caption.text()


def test_opacity_slider_changes_only_the_alpha(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    answer(panel, cnn_run)
    before = panel.overlay.overlays[1].image.copy()
    panel.opacity.setValue(20)
    after = panel.overlay.overlays[1].image
    assert np.array_equal(before[..., :3], after[..., :3])
    m = panel.shown["maps"]["saliency"]
    assert np.array_equal(after[..., 3], (np.clip(np.abs(m) * 1.5, 0, 1) * 0.2 * 255).astype(np.uint8))


def test_sample_target_layer_and_settings_ask_again(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    sel = panel_context.selection
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        sel.set(sample=3)
    assert blocker.args[2]["samples"] == [3]
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel.target.setCurrentIndex(3)
        panel.target.activated.emit(3)  # as a click does
    assert sel.target == 2 and blocker.args[2]["target"] == 2
    sel.set(target=None)
    assert panel.target.currentIndex() == 0
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        sel.set(layer="block2.conv")
    assert blocker.args[2]["layer"] == "block2.conv"
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        sel.set(layer="fc.linear")  # not a conv layer: the job picks the last conv layer
    assert blocker.args[2]["layer"] is None
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel.steps.setValue(64)
    assert blocker.args[2]["settings"]["steps"] == 64
    with qtbot.waitSignal(panel.analysis_requested) as blocker:
        panel.method_boxes["occlusion"].setChecked(True)
    assert "occlusion" in blocker.args[2]["methods"]
    for box in panel.method_boxes.values():
        box.blockSignals(True)
        box.setChecked(False)
        box.blockSignals(False)
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.run_now()
    assert "at least one method" in panel.body.message.text()


def test_target_class_result_is_for_that_class(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    panel_context.selection.set(target=1)
    result, _ = answer(panel, cnn_run)
    assert panel.shown["target"] == 1 and all(int(r["target"][0]) == 1 for r in result.values())
    assert cnn_run.info.class_names[1] in panel.caption.text()


def test_live_refresh_follows_training_and_waits_for_the_last_job(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    now = [1000.0]
    panel.controls.refresh.clock = lambda: now[0]
    panel.controls.refresh.requested(cnn_run.frame.step)  # re-stamped on the fake clock (not the uptime)
    answer(panel, cnn_run)
    panel.controls.refresh.requested(cnn_run.frame.step)
    later = dataclasses.replace(cnn_run.frame, step=cnn_run.frame.step + 5)
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(later)  # too soon
    now[0] += 3.5
    with qtbot.waitSignal(panel.analysis_requested):
        panel.render(later)
    now[0] += 10
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(dataclasses.replace(cnn_run.frame, step=cnn_run.frame.step + 9))  # the last job is not done
    panel.controls.refresh.setChecked(False)
    answer(panel, cnn_run, job_id=2)
    with qtbot.assertNotEmitted(panel.analysis_requested):
        panel.render(dataclasses.replace(cnn_run.frame, step=cnn_run.frame.step + 20))  # live off


def test_cancel_error_and_superseded_updates(qtbot, panel_context, cnn_run):
    panel = panel_for(qtbot, panel_context, cnn_run)
    asked = {k: v for k, v in panel.requested[NAME].items() if k != "kind"}
    tag = {"step": 3, "kind": KIND, **asked}
    status = panel.controls.status
    panel.receive(JobUpdate(NAME, 1, "running", 1, 3, "Saliency: sample 1 of 1", tag=tag))
    assert status.bar.value() == 333 and status.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.analysis_cancelled) as blocker:
        qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [NAME]
    panel.receive(JobUpdate(NAME, 1, "cancelled", 1, 3, tag=tag))
    assert status.label.text() == "cancelled" and not status.running
    old = dict(tag, samples=[5])
    panel.receive(JobUpdate(NAME, 2, "done", result={"saliency": {}}, tag=old))
    assert "values" not in panel.shown  # an answer to an older request
    panel.run_now()
    panel.receive(JobUpdate(NAME, 3, "error", message="ValueError: target class must lie in [0, 8)", tag=tag))
    assert panel.body.showing_message and "target class must lie" in panel.body.message.text()


def test_two_d_data_gets_bars_per_feature(qtbot, panel_context, mlp_run):
    panel = panel_for(qtbot, panel_context, mlp_run)
    assert not panel.method_boxes["grad_cam"].isEnabled()
    assert panel.requested[NAME]["methods"] == ["saliency", "integrated_gradients", "occlusion"]
    result, _ = answer(panel, mlp_run)
    assert panel.pages.currentWidget() is panel.bars
    for bars, m in zip(panel.bars.bars, panel.shown["methods"]):
        v = result[m]["values"][0]
        assert v.shape == (2,)
        opts = bars.opts
        np.testing.assert_allclose(opts["x0"] + opts["width"], np.maximum(v, 0), atol=1e-7)
        np.testing.assert_allclose(opts["x0"], np.minimum(v, 0), atol=1e-7)
    ticks = panel.bars.plots[0].getAxis("left")._tickLevels[0]
    x = mlp_run.info.probe_inputs[0]
    assert [t[1] for t in ticks] == [f"x = {x[0]:.2f}", f"y = {x[1]:.2f}"]


def test_token_row_colours_each_token_by_its_score():
    values = [np.array([0.5, -1.0, 0.0])]
    html = TokenRow.html(values, ["Integrated Gradients"], ["#4", "#7", "#1"])
    assert html.count("#4") == 1 and "Integrated Gradients" in html
    unit, scale = normalised(values[0])
    assert scale == 1.0 and np.array_equal(unit, values[0])
    assert "rgb(33,102,172)" in html  # -1: the blue end of the diverging map
    assert "rgb(247,247,247)" in html  # 0: white


def test_token_inputs_get_coloured_tokens(qtbot, panel_context, cnn_run):
    """A sequence run (token ids): the token methods only, one coloured line per method."""
    from tests.unit.test_attribution import PooledTokens
    from visualizer.capture.attribution import attribution_job
    from visualizer.stream.frames import LayerInfo

    tokens = np.array([[3, 7, 1, 9], [2, 2, 11, 5]])
    info = dataclasses.replace(cnn_run.info, data_kind="sequence", input_shape=(4,), class_names=["a", "b", "c"],
                               layers=[LayerInfo("embed", "Embedding", (4, 5), 60), LayerInfo("head", "Linear", (3,), 18)],
                               probe_inputs=tokens, probe_labels=np.array([0, 2]), probe_indices=np.array([0, 1]))
    panel = AttributionPanel(panel_context)
    qtbot.addWidget(panel)
    panel.set_run(info)
    assert [k for k, b in panel.method_boxes.items() if b.isEnabled()] == ["saliency", "integrated_gradients",
                                                                           "deeplift", "occlusion"]
    panel_context.history.ingest(cnn_run.frame)
    panel.render(cnn_run.frame)
    params = {k: v for k, v in panel.requested[NAME].items() if k != "kind"}
    assert params["methods"] == ["saliency", "integrated_gradients"]
    import torch

    torch.manual_seed(0)
    result = run_job(attribution_job(PooledTokens(), tokens[params["samples"]], params["methods"], params["target"],
                                     **params["settings"]))
    panel.receive(JobUpdate(NAME, 1, "done", result={m: a.to_dict() for m, a in result.items()},
                            tag={"step": 3, "kind": KIND, **params}))
    assert panel.pages.currentWidget() is panel.tokens
    assert np.array_equal(panel.shown["values"]["integrated_gradients"], result["integrated_gradients"].values[0])
    text = panel.tokens.label.text()
    assert "&lt;" not in text  # the titles' markup is rendered, not shown
    assert text == TokenRow.html([result[m].values[0] for m in params["methods"]], [panel._title(m, result[m].to_dict())
                                 for m in params["methods"]], ["#3", "#7", "#1", "#9"])
