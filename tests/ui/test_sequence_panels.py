"""Attention, recurrent-state and inspect-input panels on real sequence runs."""
from __future__ import annotations

import numpy as np
import pytest

from tests.ui.conftest import _make_run, show_panel


@pytest.fixture(scope="module")
def transformer_run():
    return _make_run("transformer", "reverse", {"d_model": 16, "num_heads": 2, "ff_width": 32},
                     {"n_train": 128, "n_val": 32})


@pytest.fixture(scope="module")
def lstm_run():
    return _make_run("lstm", "parity", {"hidden_size": 12}, {"n_train": 128, "n_val": 32})


def test_attention_panel_shows_the_selected_head_and_links_clicks(qtbot, panel_context, transformer_run):
    from visualizer.ui.panels.attention import AttentionPanel

    panel = show_panel(qtbot, AttentionPanel, panel_context, transformer_run)
    frame, info = transformer_run.frame, transformer_run.info
    assert info.attention_layers == ["block1.attn", "block2.attn"]
    sel = panel_context.selection
    sel.changed.connect(panel.selection_changed)  # as the main window does
    sel.set(layer="block2.attn.k", head=1, sample=3)  # a projection inside block 2 selects block 2's attention
    shown = panel.shown
    assert shown["layer"] == "block2.attn" and shown["head"] == 1 and shown["sample"] == 3
    np.testing.assert_array_equal(shown["weights"], frame.attention["block2.attn"][3, 1])
    np.testing.assert_allclose(shown["weights"].sum(-1), 1.0, atol=2e-3)  # float16 in the frame
    w = frame.attention["block2.attn"][3, 1].astype(np.float64)
    assert shown["entropy"] == pytest.approx(float(-(w * np.log(np.clip(w, 1e-12, 1))).sum(-1).mean()), abs=1e-4)
    ids = info.probe_inputs[3].astype(int)
    assert panel.map.x_names == [info.tokens[i] for i in ids] == panel.map.y_names
    panel._tile_clicked(1)  # layer 0, head 1
    assert (sel.layer, sel.head) == ("block1.attn", 1)
    assert panel.shown["layer"] == "block1.attn"
    panel.map.values = shown["weights"]
    assert "weight" in panel.map.value_at(0, 2)


def test_attention_and_recurrent_panels_say_when_a_model_has_none(qtbot, panel_context, cnn_run, transformer_run):
    from visualizer.ui.panels.attention import AttentionPanel
    from visualizer.ui.panels.recurrent import RecurrentPanel

    attention = show_panel(qtbot, AttentionPanel, panel_context, cnn_run)
    assert attention.body.showing_message and "no attention layers" in attention.body.message.text()
    recurrent = show_panel(qtbot, RecurrentPanel, panel_context, transformer_run)
    assert recurrent.body.showing_message and "no recurrent layers" in recurrent.body.message.text()


def test_recurrent_panel_shows_hidden_state_and_gates(qtbot, panel_context, lstm_run):
    from visualizer.ui.panels.recurrent import RecurrentPanel

    panel = show_panel(qtbot, RecurrentPanel, panel_context, lstm_run)
    frame = lstm_run.frame
    panel_context.selection.changed.connect(panel.selection_changed)
    panel_context.selection.set(sample=2)
    np.testing.assert_array_equal(panel.shown["hidden"], frame.recurrent["rnn1"]["hidden"][2].T)
    gates = [panel.gate_choice.itemText(i) for i in range(panel.gate_choice.count())]
    assert gates == ["input", "forget", "candidate", "output", "cell"]
    panel.gate_choice.setCurrentText("output")
    np.testing.assert_array_equal(panel.shown["gate/output"], frame.recurrent["rnn1"]["gates/output"][2].T)


def test_inspect_input_runs_the_model_on_a_typed_sequence(qtbot, panel_context, transformer_run):
    import torch

    from visualizer.capture.jobs import JobUpdate, run_job
    from visualizer.capture.session import analysis_job
    from visualizer.ui.panels.inspect_input import InspectInputPanel

    panel = show_panel(qtbot, InspectInputPanel, panel_context, transformer_run)
    requests = []
    panel.analysis_requested.connect(lambda name, kind, params: requests.append((name, kind, params)))
    panel.entry.setText("3 1 4 1 5")
    panel.run_now()
    assert requests == [("inspect", "inspect", {"tokens": [3, 1, 4, 1, 5]})]
    session = transformer_run.session
    result = run_job(analysis_job(session, "inspect", requests[0][2]))
    panel.receive(JobUpdate("inspect", 1, "done", result=result, tag={"step": 3, "kind": "inspect", "tokens": [3, 1, 4, 1, 5]}))
    model = session.trainer.model.eval()
    with torch.no_grad():
        expected = model(torch.tensor([[3, 1, 4, 1, 5]])).softmax(-1)[0].numpy()
    np.testing.assert_allclose(panel.shown["probs"], expected, atol=1e-5)
    assert panel.shown["weights"].shape == (5, 5)
    panel.entry.setText("3 x")
    panel.run_now()
    assert "unknown symbol 'x'" in panel.shown["error"] and len(requests) == 1


def test_attribution_on_a_sequence_run_colours_the_dataset_symbols(qtbot, panel_context, transformer_run):
    """The attribution job runs on a real sequence session and the tokens are shown as the dataset's symbols."""
    import re
    from html import unescape

    from visualizer.capture.jobs import JobUpdate, run_job
    from visualizer.capture.session import analysis_job
    from visualizer.ui.panels.attribution import NAME, AttributionPanel

    panel = show_panel(qtbot, AttributionPanel, panel_context, transformer_run)
    panel_context.selection.changed.connect(panel.selection_changed)
    panel_context.selection.set(sample=3)
    params = dict(panel.requested[NAME])
    kind = params.pop("kind")
    assert params["samples"] == [3] and params["methods"] == ["saliency", "integrated_gradients"]
    result = run_job(analysis_job(transformer_run.session, kind, params))
    panel.receive(JobUpdate(NAME, 1, "done", 1, 1, result=result, tag={"step": transformer_run.frame.step, "kind": kind, **params}))
    session = transformer_run.session
    symbols = [session.trainer.dataset.tokens[i] for i in session.probe_x[3].tolist()]
    assert panel.shown["tokens"] == symbols
    line = panel.tokens.label.text().split("</p>")[0]  # the first method's line
    shown = [unescape(t).replace("\xa0", "") for t in re.findall(r'<span style="background-color: [^"]*;">(.*?)</span>', line)]
    assert shown == symbols and not any(s.startswith("#") for s in shown)
    assert result["integrated_gradients"]["values"].shape == (1, len(symbols))
    last = len(symbols) - 1  # per-position outputs: the last position is explained by default
    truth = transformer_run.info.class_names[int(session.probe_y[3][last])]
    assert f"at output position {last} (true: {truth})" in panel.caption.text()

    # another output position: asked for, and the caption names it and its true label
    assert panel.position.isVisibleTo(panel) and panel.position.maximum() == len(symbols) - 1
    panel.position.setValue(2)
    params = dict(panel.requested[NAME])
    params.pop("kind")
    assert params["settings"]["position"] == 2
    result = run_job(analysis_job(transformer_run.session, kind, params))
    panel.receive(JobUpdate(NAME, 2, "done", 1, 1, result=result, tag={"step": transformer_run.frame.step, "kind": kind, **params}))
    truth = transformer_run.info.class_names[int(session.probe_y[3][2])]
    assert result["saliency"]["position"] == 2 and f"at output position 2 (true: {truth})" in panel.caption.text()
