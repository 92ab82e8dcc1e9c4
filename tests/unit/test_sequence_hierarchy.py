"""The hierarchy analyses on token sequences: per-token rows (one position per sequence),
one-hot token inputs, mean-and-last features for one label per sequence, top sequences with
the unit's value at every token, per-token class selectivity."""
import numpy as np
import torch
import torch.nn.functional as F

from visualizer.capture import hierarchy as h
from visualizer.engine.data import make_dataset
from visualizer.engine.models import build_model


def _model(data, **options):
    torch.manual_seed(0)
    ds = make_dataset(data)
    per_token = ds.y_train.dim() > 1
    model = build_model("transformer", ds.input_shape, ds.num_classes, vocab_size=len(ds.tokens), per_token=per_token,
                        num_layers=1, d_model=16, num_heads=2, ff_width=32, **options).eval()
    return ds, model


def test_per_token_rows_take_each_sequence_at_one_seeded_position():
    ds, model = _model("reverse")
    x, y = ds.x_val[:200], ds.y_val[:200]
    positions = h.probe_positions(y, seed=0)
    assert positions.shape == (200,) and np.array_equal(positions, h.probe_positions(y, seed=0))
    assert len(np.unique(positions)) == x.shape[1]  # every position is drawn
    feats = h.run_job(h._features(model, x, ["embed", "block1.ff2"], 256, 64, 0, positions=positions))
    rows = torch.arange(200)
    vocab = int(x.max()) + 1
    np.testing.assert_array_equal(feats["input"], F.one_hot(x[rows, positions], vocab).float().numpy())
    with torch.no_grad():
        embedded = model.embed(x)
    np.testing.assert_allclose(feats["embed"], embedded[rows, positions].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(h.row_labels(y, positions), y[rows, positions].numpy())


def test_the_input_probe_reads_the_copied_token_and_not_the_reversed_one():
    for data, lo, hi in (("copy", 0.99, 1.0), ("reverse", 0.0, 0.25)):
        ds, model = _model(data)
        acc = h.layer_probes(model, ds.x_val[:600], ds.y_val[:600], layers=["embed"])
        # copy: the target at t is the token at t, linear in its one-hot; reverse: the token at T-1-t (chance 0.1)
        assert lo <= acc["input"] <= hi, (data, acc)


def test_one_label_per_sequence_features_are_the_mean_beside_the_last_position():
    ds, model = _model("brackets")
    x = ds.x_val[:50]
    feats = h.run_job(h._features(model, x, ["block1.ff2"], 256, 64, 0))
    with torch.no_grad():
        _, outs = h.record_outputs(model, x, ["block1.ff2"])
    out = outs["block1.ff2"]
    np.testing.assert_allclose(feats["block1.ff2"], torch.cat([out.mean(1), out[:, -1]], 1).numpy(), rtol=1e-5)
    vocab = int(x.max()) + 1
    np.testing.assert_array_equal(feats["input"], F.one_hot(x, vocab).float().reshape(50, -1).numpy())


def test_top_sequences_carry_the_units_value_at_every_token():
    ds, model = _model("reverse")
    x = ds.x_val[:300]
    top = h.top_examples(model, x, "block1.ff1", 3, k=5)
    with torch.no_grad():
        _, outs = h.record_outputs(model, x, ["block1.ff1"])
    unit = outs["block1.ff1"][:, :, 3]
    np.testing.assert_array_equal(top.tokens, x[top.indices].numpy())
    np.testing.assert_allclose(top.trace, unit[top.indices].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(top.positions[:, 1], unit[top.indices].argmax(1).numpy())
    np.testing.assert_allclose(top.values, unit.max(1).values.topk(5).values.numpy(), rtol=1e-6)


def test_per_token_selectivity_averages_every_position_at_its_own_label():
    ds, model = _model("reverse")
    x, y = ds.x_val[:120], ds.y_val[:120]
    sel = h.class_selectivity(model, x, y, "block1.ff2")
    with torch.no_grad():
        _, outs = h.record_outputs(model, x, ["block1.ff2"])
    acts, labels = outs["block1.ff2"].reshape(-1, 16).double(), y.reshape(-1)
    expected = torch.stack([acts[labels == c].mean(0) for c in torch.unique(labels)])
    np.testing.assert_array_equal(sel.classes, torch.unique(labels).numpy())
    np.testing.assert_allclose(sel.class_means, expected.numpy(), rtol=1e-5, atol=1e-6)
