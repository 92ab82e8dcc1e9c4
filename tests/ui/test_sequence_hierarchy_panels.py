"""The hierarchy panels on a per-token sequence run (Transformer on reverse): the session
serves probes, projections, top examples and selectivity; Representations colours each point
by the target at its position; Top examples shows coloured token lines of the real result."""
from __future__ import annotations

import numpy as np
import pytest

from tests.ui.conftest import _make_run, show_panel
from visualizer.capture.jobs import JobUpdate, run_job
from visualizer.capture.session import analysis_job
from visualizer.ui.panels.representations import KIND, NAME, SAMPLES, RepresentationsPanel
from visualizer.ui.panels.top_examples import TopExamplesPanel


@pytest.fixture(scope="module")
def reverse_run():
    return _make_run("transformer", "reverse", {"num_layers": 1, "d_model": 16, "num_heads": 2, "ff_width": 32},
                     {"n_train": 256, "n_val": 300})


def test_the_session_serves_every_hierarchy_analysis_but_image_synthesis(reverse_run):
    session = reverse_run.session
    probes = run_job(analysis_job(session, "layer_probes", {}))
    assert list(probes) == ["input", *session.layer_order] and all(0 <= a <= 1 for a in probes.values())
    sel = run_job(analysis_job(session, "selectivity", {"layer": "block1.ff2"}))
    assert sel.index.shape == (16,)
    with pytest.raises(ValueError, match="token inputs are discrete"):
        analysis_job(session, "feature_vis", {"layer": "block1.ff2", "channel": 0})


def test_representations_colour_each_point_by_the_target_at_its_position(qtbot, panel_context, reverse_run):
    panel = show_panel(qtbot, RepresentationsPanel, panel_context, reverse_run)
    result = run_job(analysis_job(reverse_run.session, KIND, {"samples": SAMPLES}))
    panel.receive(JobUpdate(NAME, 1, "done", 1, 1, result=result, tag={"step": reverse_run.frame.step, "kind": KIND,
                                                                        "samples": SAMPLES}))
    first = result["input"]
    y = reverse_run.info.analysis_labels
    expected = y[np.arange(len(first.positions)), first.positions]
    assert np.array_equal(panel.shown["labels"], expected)
    assert "colour = the target at that position" in panel.caption.text()


def test_top_examples_show_the_sequences_with_the_units_value_at_each_token(qtbot, panel_context, reverse_run):
    panel = show_panel(qtbot, TopExamplesPanel, panel_context, reverse_run)
    panel_context.selection.changed.connect(panel.selection_changed)
    params = {"layer": "block1.ff1", "channel": 2}
    panel_context.selection.set(**params)
    result = run_job(analysis_job(reverse_run.session, "top_examples", params))
    panel.receive(JobUpdate("top_examples", 1, "done", 1, 1, result=result,
                            tag={"step": reverse_run.frame.step, "kind": "top_examples", **params}))
    assert panel.pages.currentIndex() == 2
    assert np.array_equal(panel.shown["trace"], result.trace) and np.array_equal(panel.shown["indices"], result.indices)
    y = reverse_run.info.analysis_labels
    assert np.array_equal(panel.shown["labels"], y[result.indices, result.positions[:, 1]])
    html = panel.sequences.label.text()
    symbols = reverse_run.info.tokens
    peak = symbols[int(result.tokens[0][result.positions[0, 1]])]
    assert f"<b><u>&nbsp;{peak}&nbsp;</u></b>" in html and f"#{int(result.indices[0])} · <b>{result.values[0]:.2f}</b>" in html
    assert "coloured by the" in panel.caption.text()
