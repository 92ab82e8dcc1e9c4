"""Sequence datasets, token models, attention and recurrent capture: values checked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from visualizer.capture.attention import (
    antidiagonal_share,
    attention_entropy,
    attention_rollout,
    capture_attention,
    capture_recurrent,
)
from visualizer.capture.layers import hook_count
from visualizer.engine.data import make_dataset
from visualizer.engine.data.sequences import encode
from visualizer.engine.models import build_model
from visualizer.engine.models.attention import SelfAttention
from visualizer.engine.run import RunSpec, build_trainer
from visualizer.engine.trainer import TrainConfig

torch.set_num_threads(1)


# ------------------------------------------------------------------ data
@pytest.mark.parametrize("name", ["copy", "reverse", "sort"])
def test_seq2seq_targets_follow_the_rule(name):
    ds = make_dataset(name, n_train=50, n_val=20, seq_len=6, vocab=5)
    x, y = ds.x_train.numpy(), ds.y_train.numpy()
    expected = {"copy": x, "reverse": x[:, ::-1], "sort": np.sort(x, 1)}[name]
    assert ds.kind == "sequence" and x.shape == (50, 6) and y.shape == (50, 6)
    assert (y == expected).all() and x.max() < 5 and ds.tokens == ["0", "1", "2", "3", "4"]


def test_brackets_and_parity_labels_are_recomputed_by_hand():
    ds = make_dataset("brackets", n_train=200, n_val=50, seq_len=8, seed=3)
    for row, label in zip(ds.x_train.tolist(), ds.y_train.tolist()):
        depth, ok = 0, True
        for t in row:
            depth += 1 if ds.tokens[t] == "(" else -1
            ok = ok and depth >= 0
        assert label == int(ok and depth == 0)
    assert 0.4 < ds.y_train.float().mean() < 0.6
    whole = make_dataset("parity", n_train=100, n_val=10, seq_len=7, running=False)
    assert (whole.y_train == whole.x_train.sum(1) % 2).all()
    running = make_dataset("parity", n_train=100, n_val=10, seq_len=7)  # default: parity of the bits so far
    for row, labels in zip(running.x_train.tolist(), running.y_train.tolist()):
        assert labels == [sum(row[: t + 1]) % 2 for t in range(len(row))]
    assert torch.equal(running.x_train, whole.x_train)


def test_text_labels_are_the_next_character_and_sets_are_deterministic():
    a, b = make_dataset("text", n_train=40, n_val=10, seq_len=16, seed=5), make_dataset("text", n_train=40, n_val=10, seq_len=16, seed=5)
    assert torch.equal(a.x_train, b.x_train) and a.causal
    assert torch.equal(a.x_train[:, 1:], a.y_train[:, :-1])
    assert encode(a.tokens, "the cat") == [a.tokens.index(c if c != " " else "\u2423") for c in "the cat"]
    with pytest.raises(ValueError, match="unknown symbol"):
        encode(a.tokens, "THE")


def test_bad_sequence_parameters_are_reported():
    with pytest.raises(ValueError, match="seq_len"):
        make_dataset("reverse", seq_len=1)
    with pytest.raises(ValueError, match="even"):
        make_dataset("brackets", seq_len=7)
    with pytest.raises(ValueError, match="cannot read token sequences"):
        build_trainer(RunSpec(model="mlp", data="parity", device="cpu"))
    with pytest.raises(ValueError, match="token sequences of shape"):
        build_trainer(RunSpec(model="transformer", data="spiral", device="cpu"))


# ------------------------------------------------------------------ attention
def _manual_attention(attn: SelfAttention, h: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) per head, straight from the q/k Linear weights."""
    q = h @ attn.q.weight.T + attn.q.bias
    k = h @ attn.k.weight.T + attn.k.bias
    n, t, d = q.shape
    heads = attn.num_heads
    q = q.view(n, t, heads, d // heads).permute(0, 2, 1, 3)
    k = k.view(n, t, heads, d // heads).permute(0, 2, 1, 3)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
    if attn.causal:
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, -1)


@pytest.mark.parametrize("norm_first", [True, False])
def test_captured_attention_equals_manual_recomputation_and_rows_sum_to_one(norm_first):
    torch.manual_seed(0)
    model = build_model("transformer", (7,), 5, vocab_size=5, num_layers=2, num_heads=2, d_model=8,
                        norm_first=norm_first, causal=True)
    x = torch.randint(0, 5, (3, 7))
    captured = capture_attention(model, x)
    assert list(captured) == ["block1.attn", "block2.attn"]
    # the input of block 2's attention, computed with a plain forward pass
    model.eval()
    with torch.no_grad():
        h = model.embed(x) + model.pos_embed(torch.arange(7))
        inputs = {}
        b1 = model.block1
        inputs["block1.attn"] = b1.norm1(h) if norm_first else h
        h2 = b1(h)
        inputs["block2.attn"] = model.block2.norm1(h2) if norm_first else h2
        for name, attn in (("block1.attn", b1.attn), ("block2.attn", model.block2.attn)):
            manual = _manual_attention(attn, inputs[name]).numpy()
            assert captured[name].shape == (3, 2, 7, 7)
            np.testing.assert_allclose(captured[name], manual, atol=1e-5)
            np.testing.assert_allclose(captured[name].sum(-1), 1.0, atol=1e-5)
            assert np.allclose(np.triu(captured[name], 1), 0)  # causal: nothing from the future
    assert hook_count(model) == 0
    assert not any(m.keep_weights or m.last_weights is not None for m in model.modules() if isinstance(m, SelfAttention))


def test_fast_path_and_weight_path_give_the_same_output():
    torch.manual_seed(1)
    model = build_model("transformer", (6,), 4, vocab_size=4, d_model=16, num_heads=4).eval()
    x = torch.randint(0, 4, (2, 6))
    with torch.no_grad():
        fast = model(x)
        for m in model.modules():
            if isinstance(m, SelfAttention):
                m.keep_weights = True
        slow = model(x)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_causal_model_prediction_at_t_ignores_later_tokens():
    torch.manual_seed(2)
    ds = make_dataset("text", n_train=64, n_val=16, seq_len=12)
    trainer = build_trainer(RunSpec(model="transformer", data="text", data_options={"n_train": 64, "n_val": 16, "seq_len": 12},
                                    device="cpu"))
    model = trainer.model.eval()
    assert model.causal
    x = ds.x_val[:4].clone()
    t = 5
    changed = x.clone()
    changed[:, t + 1:] = (changed[:, t + 1:] + 3) % len(ds.tokens)
    with torch.no_grad():
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])


def test_multihead_attention_of_a_stock_encoder_layer_is_captured():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model = nn.Sequential(layer)
    for p in model.parameters():  # frozen, as in an analysis snapshot
        p.requires_grad_(False)
    x = torch.randn(2, 5, 8)
    captured = capture_attention(model, x)["0.self_attn"]
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    mha = layer.self_attn
    q, k, _ = (x @ mha.in_proj_weight.T + mha.in_proj_bias).chunk(3, -1)
    q = q.view(2, 5, 2, 4).transpose(1, 2)
    k = k.view(2, 5, 2, 4).transpose(1, 2)
    manual = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1).detach().numpy()
    np.testing.assert_allclose(captured, manual, atol=1e-5)
    assert hook_count(model) == 0


def test_vit_attention_covers_the_class_token_and_patches():
    torch.manual_seed(4)
    model = build_model("vit", (3, 16, 16), 4, patch_size=4, num_layers=2, d_model=16)
    captured = capture_attention(model, torch.rand(2, 3, 16, 16))
    assert [w.shape for w in captured.values()] == [(2, 4, 17, 17)] * 2
    roll = attention_rollout(list(captured.values()))
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-6)
    a = [0.5 * w.mean(1) + 0.5 * np.eye(17) for w in captured.values()]
    np.testing.assert_allclose(roll, a[1] @ a[0], atol=1e-6)


def test_antidiagonal_share_and_entropy():
    t = 4
    perfect = np.eye(t)[::-1][None, None]
    uniform = np.full((1, 1, t, t), 1 / t)
    assert antidiagonal_share(perfect) == pytest.approx(1.0)
    assert antidiagonal_share(uniform) == pytest.approx(1 / t)
    half = 0.5 * perfect + 0.5 * np.eye(t)[None, None]
    assert antidiagonal_share(half) == pytest.approx(0.5)
    assert attention_entropy(uniform)[0, 0] == pytest.approx(math.log(t))
    assert attention_entropy(perfect)[0, 0] == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ recurrent
@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
def test_captured_hidden_states_and_gates_reproduce_the_layer(arch):
    torch.manual_seed(5)
    model = build_model(arch, (6,), 3, vocab_size=4, embed_dim=5, hidden_size=7, num_layers=2)
    x = torch.randint(0, 4, (3, 6))
    rec = capture_recurrent(model, x)
    assert list(rec) == ["rnn1", "rnn2"] and hook_count(model) == 0
    with torch.no_grad():
        e = model.embed(x)
        h1, _ = model.rnn1(e)
        h2, _ = model.rnn2(h1)
    np.testing.assert_allclose(rec["rnn1"]["hidden"], h1.numpy(), atol=1e-6)
    np.testing.assert_allclose(rec["rnn2"]["hidden"], h2.numpy(), atol=1e-6)
    g = rec["rnn1"]
    if arch == "lstm":  # h_t = o_t * tanh(c_t) with c from the recomputed gates
        np.testing.assert_allclose(g["gates/output"] * np.tanh(g["gates/cell"]), h1.numpy(), atol=1e-5)
    elif arch == "gru":  # h_t = (1 - z) * n + z * h_{t-1}
        prev = np.concatenate([np.zeros_like(h1[:, :1]), h1[:, :-1].numpy()], 1)
        z, n = g["gates/update"], g["gates/candidate"]
        np.testing.assert_allclose((1 - z) * n + z * prev, h1.numpy(), atol=1e-5)
    else:
        assert not any(k.startswith("gates/") for k in g)


@pytest.mark.parametrize("arch,data", [("transformer", "reverse"), ("lstm", "brackets"), ("gru", "text")])
def test_token_models_train_with_per_token_or_pooled_loss_and_accuracy(arch, data):
    spec = RunSpec(model=arch, data=data, data_options={"n_train": 128, "n_val": 32},
                   model_options={"d_model": 16, "num_heads": 2} if arch == "transformer" else {"hidden_size": 16},
                   config=TrainConfig(batch_size=32, lr=3e-3), device="cpu")
    trainer = build_trainer(spec)
    ds = trainer.dataset
    for _ in range(10):
        trainer.step()
    loss, acc = trainer.evaluate()
    with torch.no_grad():  # by hand: mean -log p(label) and share of correct tokens (or sequences)
        logits = trainer.model.eval()(trainer.x_val).double()
    log_p = logits - logits.logsumexp(-1, keepdim=True)
    manual_loss = -log_p.gather(-1, trainer.y_val[..., None]).mean()
    assert logits.shape[:-1] == trainer.y_val.shape
    assert float(acc) == pytest.approx((logits.argmax(-1) == trainer.y_val).double().mean().item(), abs=1e-6)
    assert float(loss) == pytest.approx(float(manual_loss), rel=1e-4)
    assert trainer.model.spec["options"]["vocab_size"] == len(ds.tokens)
    assert trainer.model.spec["options"]["per_token"] == (ds.y_train.dim() == 2)


# ------------------------------------------------------------------ session and command line
def test_frames_carry_the_probe_batch_attention_and_leave_nothing_attached():
    from visualizer.capture.session import CaptureSettings, TrainingSession

    spec = RunSpec(model="transformer", data="reverse", data_options={"n_train": 64, "n_val": 32},
                   model_options={"d_model": 16, "num_heads": 2}, device="cpu")
    session = TrainingSession(build_trainer(spec), settings=CaptureSettings(probe_size=5, max_rate_hz=1e9, budget=1.0))
    model = session.trainer.model
    session.run(2)
    assert session.mailbox.take("train") is None  # unarmed steps publish nothing
    session.arm()
    frame = session.step()
    assert sorted(frame.attention) == ["block1.attn", "block2.attn"]
    expected = capture_attention(model, session.probe_x)
    for name, w in frame.attention.items():
        assert w.shape == (5, 2, 8, 8)
        np.testing.assert_allclose(w, expected[name], atol=2e-3)  # float16 in the frame
    assert frame.probe.probs.shape == (5, 8, 10) and frame.probe.labels.shape == (5, 8)
    info = session.run_info()
    assert info.tokens == [str(d) for d in range(10)] and info.attention_layers == ["block1.attn", "block2.attn"]
    assert hook_count(model) == 0
    assert not any(m.keep_weights or m.last_weights is not None for m in model.modules() if isinstance(m, SelfAttention))


def test_inspect_job_matches_a_plain_forward_pass_and_rejects_bad_ids():
    from visualizer.capture.attention import inspect_job
    from visualizer.capture.jobs import run_job

    torch.manual_seed(6)
    model = build_model("gru", (6,), 3, vocab_size=4, hidden_size=5)
    result = run_job(inspect_job(model, [1, 2, 3], "cpu"))
    with torch.no_grad():
        expected = model.eval()(torch.tensor([[1, 2, 3]])).softmax(-1)[0].numpy()
    np.testing.assert_allclose(result["probs"], expected, atol=1e-6)
    assert result["recurrent"]["rnn1"]["hidden"].shape == (3, 5)
    with pytest.raises(ValueError, match=r"token ids must lie in 0\.\.3"):
        inspect_job(model, [1, 7], "cpu")


def test_command_line_trains_a_sequence_model_and_rejects_bad_combinations(capsys):
    import json

    from visualizer.cli import main

    rc = main(["train", "--model", "lstm", "--data", "brackets", "--steps", "5", "--threads", "1", "--json",
               "-D", "n_train=64", "-D", "n_val=16", "-M", "hidden_size=8"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and result["step"] == 5 and 0 <= result["val_acc"] <= 1
    assert main(["train", "--model", "cnn", "--data", "reverse", "--steps", "1"]) == 2
    assert "cannot read token sequences" in capsys.readouterr().err
    assert main(["train", "--model", "transformer", "--data", "text", "--steps", "1", "-M", "vocab_size=3"]) == 2
    assert "vocab_size 3 is too small" in capsys.readouterr().err


def test_default_parity_is_learned_on_strings_never_seen_in_training():
    """Running parity of 16 bits: an LSTM learns it in a few hundred steps, and the whole-string
    parity (the last position) is right on validation strings that are not in the training set."""
    torch.manual_seed(0)
    trainer = build_trainer(RunSpec(model="lstm", data="parity", model_options={"hidden_size": 32},
                                    config=TrainConfig(optimizer="adam", lr=1e-2, batch_size=64), device="cpu"))
    ds = trainer.dataset
    seen = {tuple(r) for r in ds.x_train.tolist()}
    unseen = torch.tensor([tuple(r) not in seen for r in ds.x_val.tolist()])
    assert ds.x_train.shape[1] == 16 and unseen.float().mean() > 0.8
    trainer.run(200)
    with torch.no_grad():
        last = trainer.model.eval()(trainer.x_val)[:, -1].argmax(-1)
    whole = ds.x_val.sum(1) % 2  # recomputed by hand
    assert (last == whole)[unseen].float().mean() > 0.95
