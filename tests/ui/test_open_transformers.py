"""A Transformers folder opened in the window: typed text is tokenised by the model's own
tokenizer, and the Attention panel shows the model's own ``output_attentions`` for it, every
layer and head, with the tokenizer's tokens on the axes. Also typed symbols for our own
Transformer and ``show(model, inputs=token_ids)``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.ui.conftest import make_window

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))


@pytest.fixture()
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    yield w
    w.close()


def _type(qtbot, w, text: str) -> None:
    panel = w.panels["inspect_input"]
    panel.entry.setText(text)
    panel.run_now()
    qtbot.waitUntil(lambda: panel.shown.get("tokens") is not None or "error" in panel.shown, timeout=30_000)
    assert "error" not in panel.shown, panel.shown


def test_a_transformers_folder_opens_and_shows_attention_for_typed_text(qtbot, window, tmp_path):
    pytest.importorskip("transformers")
    from test_loading import _tiny_bert

    model, tokenizer = _tiny_bert(tmp_path / "bert")
    w = window
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        assert w.opener.open_path(tmp_path / "bert")
    assert w.run.tokenizer and w.run.attention_layers == ["bert.encoder.layer.0.attention",
                                                          "bert.encoder.layer.1.attention"]
    assert w.run.labels_from_model  # sample sentences have no true labels: never counted as "right"
    qtbot.waitUntil(lambda: w.history.latest is not None and bool(w.history.latest.attention), timeout=30_000)
    attention = w.panels["attention"]
    w.docks["attention"].raise_()
    pad = tokenizer.pad_token_id
    for sample in range(len(w.run.probe_inputs)):  # sample sentences: padding trimmed off the maps
        w.selection.set(sample=sample)
        attention.render(w.history.latest)
        ids = [int(i) for i in w.run.probe_inputs[sample] if int(i) != pad]
        assert attention.shown["symbols"] == tokenizer.convert_ids_to_tokens(ids)
    w.selection.set(sample=0)
    _type(qtbot, w, "the cat sat on the mat")
    enc = tokenizer(["the cat sat on the mat"], return_tensors="pt")
    with torch.no_grad():
        reference = model(**enc, output_attentions=True)
    expected_tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    inspect = w.panels["inspect_input"]
    np.testing.assert_array_equal(inspect.shown["tokens"], enc["input_ids"][0].numpy())
    np.testing.assert_allclose(inspect.shown["probs"], torch.softmax(reference.logits[0], -1).numpy(), rtol=1e-4, atol=1e-6)
    attention.render(w.history.latest)
    qtbot.waitUntil(lambda: attention.shown.get("typed"), timeout=10_000)
    assert attention.shown["symbols"] == expected_tokens
    assert attention.map.x_names == expected_tokens and attention.map.y_names == expected_tokens
    layers, heads = 2, 2
    expected = torch.cat([a[0] for a in reference.attentions]).numpy()  # (layers * heads, T, T)
    assert attention.shown["thumbnails"].shape == (layers * heads, 6, 6)
    # maps cross from the worker as float16 (what frames carry): equal to about 3 decimals
    np.testing.assert_allclose(attention.shown["thumbnails"], expected, rtol=0, atol=1e-3)
    w.selection.set(layer="bert.encoder.layer.1.attention", head=1)  # click layer 1 head 1: the enlarged map follows
    attention.render(w.history.latest)
    np.testing.assert_allclose(attention.shown["weights"], reference.attentions[1][0, 1].numpy(), rtol=0, atol=1e-3)


def test_typed_symbols_for_our_transformer_and_show_with_token_ids(qtbot):
    from visualizer.engine.data import make_dataset
    from visualizer.engine.models import build_model
    from visualizer.ui.inspect import show

    torch.manual_seed(0)
    ds = make_dataset("reverse", n_train=32, n_val=16)
    model = build_model("transformer", ds.input_shape, ds.num_classes, vocab_size=10, num_layers=2, num_heads=2,
                        d_model=16, ff_width=32).eval()
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]])
    w = show(model, inputs=ids, block=False)
    qtbot.addWidget(w)
    w.error_dialogs = False
    try:
        assert w.run.data_kind == "sequence" and w.run.tokens == [str(i) for i in range(10)]
        np.testing.assert_array_equal(np.sort(w.run.probe_inputs.astype(np.int64), 0), np.sort(ids.numpy(), 0))
        _type(qtbot, w, "5 3 5")
        with torch.no_grad():
            model.block1.attn.keep_weights = True
            probs = torch.softmax(model(torch.tensor([[5, 3, 5]])), -1)[0]
            maps = model.block1.attn.last_weights[0]
            model.block1.attn.keep_weights = False
        np.testing.assert_allclose(w.panels["inspect_input"].shown["probs"], probs.numpy(), rtol=1e-4, atol=1e-6)
        attention = w.panels["attention"]
        attention.render(w.history.latest)
        qtbot.waitUntil(lambda: attention.shown.get("typed"), timeout=10_000)
        w.selection.set(layer="block1.attn", head=0)
        attention.render(w.history.latest)
        assert attention.shown["symbols"] == ["5", "3", "5"]
        np.testing.assert_allclose(attention.shown["weights"], maps[0].numpy(), rtol=0, atol=1e-3)
    finally:
        w.close()
