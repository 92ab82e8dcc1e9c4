"""Layer analyses (probes, top examples, activation maximisation, selectivity) and the
cancellable jobs that run them: real values against brute force, work counted not timed."""
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torch import nn

from visualizer.capture import hierarchy as H
from visualizer.capture.jobs import Cancelled, JobRunner, JobUpdate, Progress, run_job, snapshot
from visualizer.capture.layers import discover_layers, hook_count
from visualizer.capture.probes import capture_activations
from visualizer.engine.data import make_dataset
from visualizer.engine.models import build_model
from visualizer.engine.trainer import TrainConfig, Trainer
from visualizer.stream.mailbox import Mailbox


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    """A default CNN trained a few dozen steps on a small shapes set, left in train mode
    with gradients from one more backward pass (so we can check nobody touches them)."""
    data = make_dataset("shapes", n_train=256, n_val=128)
    torch.manual_seed(0)
    model = build_model("cnn", data.input_shape, data.num_classes)
    trainer = Trainer(model, data, TrainConfig(batch_size=32), device="cpu")
    trainer.run(40)
    model.train()
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(data.x_train[:32]), data.y_train[:32]).backward()
    return model, data


class Untouched:
    """Snapshot of what an analysis must leave alone: weights, .grad, modes, hooks, RNG."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.state = {k: v.clone() for k, v in model.state_dict().items()}
        self.grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
        self.requires = {n: p.requires_grad for n, p in model.named_parameters()}
        self.modes = [m.training for m in model.modules()]
        self.rng = torch.get_rng_state()

    def check(self) -> None:
        m = self.model
        assert hook_count(m) == 0
        after = m.state_dict()
        assert after.keys() == self.state.keys() and all(torch.equal(after[k], v) for k, v in self.state.items())
        for n, p in m.named_parameters():
            g = self.grads[n]
            assert (p.grad is None and g is None) or torch.equal(p.grad, g), n
            assert p.requires_grad == self.requires[n], n
        assert [x.training for x in m.modules()] == self.modes
        assert torch.equal(torch.get_rng_state(), self.rng)  # the global generator was not used


# ----------------------------------------------------------------------------- probes
def test_probe_on_linearly_separable_features_scores_near_one():
    rng = np.random.default_rng(0)
    k, n = 4, 200
    y = np.arange(n) % k
    means = rng.normal(size=(k, 20)) * 6
    x = means[y] + rng.normal(size=(n, 20))
    assert H.linear_probe_accuracy(x, y) >= 0.97


@pytest.mark.parametrize("n_features", [30, 400])
def test_probe_on_random_features_with_random_labels_scores_chance(n_features):
    # With 400 features for 200 samples a probe scored on its own training samples would get 1.0.
    rng = np.random.default_rng(1)
    k = 4
    x = rng.normal(size=(200, n_features))
    y = rng.permutation(np.arange(200) % k)
    assert abs(H.linear_probe_accuracy(x, y) - 1 / k) <= 0.15


def test_probe_needs_two_samples_per_class():
    with pytest.raises(ValueError, match="at least 2"):
        H.linear_probe_accuracy(np.zeros((5, 3)), [0, 0, 0, 0, 1])


def test_pooling_rule_gives_max_features_per_layer_at_most(trained):
    model, data = trained
    for max_features in (16, 64, 256):
        feats = H.layer_features(model, data.x_val[:20], max_features=max_features)
        assert list(feats) == ["input"] + [l.name for l in discover_layers(model, data.x_val[:1])]
        for name, f in feats.items():
            assert f.shape[0] == 20 and 1 <= f.shape[1] <= max_features, (name, f.shape)
        assert all(f.shape[1] == max_features for name, f in feats.items() if name not in ("fc.linear", "fc.relu", "head"))
    assert H.pooled_side(3, 32, 32, 256) == 10 and H.pooled_side(32, 16, 16, 256) == 3
    assert H.pooled_side(64, 8, 8, 256) == 2 and H.pooled_side(512, 4, 4, 256) == 1 and H.pooled_side(1, 4, 4, 256) == 4
    # wider than max_features after pooling (a wide dense layer, many channels): a fixed projection
    wide = torch.randn(10, 1000)
    a, b = H.pool_features(wide, 64), H.pool_features(wide, 64)
    assert a.shape == (10, 64) and torch.equal(a, b)
    assert H.pool_features(torch.randn(10, 300, 8, 8), 256).shape == (10, 256)


def test_layer_probes_in_forward_order_and_leave_the_model_alone(trained):
    model, data = trained
    guard = Untouched(model)
    acc = H.layer_probes(model, data.x_val, data.y_val, folds=3)
    guard.check()
    assert list(acc) == ["input"] + [l.name for l in discover_layers(model, data.x_val[:1])]
    assert all(0.0 <= v <= 1.0 for v in acc.values())


def test_cli_layer_probes_adds_an_ordered_object(capsys):
    from visualizer.cli import main

    assert main(["train", "--model", "mlp", "--data", "blobs", "--steps", "30", "--layer-probes", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = list(result["layer_probe_acc"])
    assert names[0] == "input" and names[-1] == "head" and "hidden1.relu" in names
    assert all(0 <= v <= 1 for v in result["layer_probe_acc"].values())


# ----------------------------------------------------------------------------- top examples
@pytest.mark.parametrize("layer, channel", [("block2.relu", 3), ("block1.conv", 0), ("fc.relu", 5)])
def test_top_examples_are_the_argmax_over_the_pool(trained, layer, channel):
    model, data = trained
    pool = data.x_val
    guard = Untouched(model)
    top = H.top_examples(model, pool, layer, channel, k=9, batch_size=50)  # three batches
    guard.check()
    a = capture_activations(model, pool, [layer])[layer][:, channel]
    brute = a.reshape(len(pool), -1).max(1).values
    order = torch.argsort(brute, descending=True)[:9]
    np.testing.assert_allclose(top.values, brute[order].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(brute[top.indices].numpy(), top.values, rtol=1e-5, atol=1e-6)
    assert len(set(top.indices.tolist())) == 9
    assert top.crops.shape == (9, 48, 48, 3) and top.crops.min() >= 0 and top.crops.max() <= 1
    for j in range(9):
        t, b, l, r = top.boxes[j]
        assert 0 <= t < b <= 32 and 0 <= l < r <= 32
        if a.dim() == 3:  # the max sits at the recorded position, and the crop shows its receptive field
            row, col = top.positions[j]
            assert a[top.indices[j], row, col] == pytest.approx(float(top.values[j]), rel=1e-5)
        region = pool[top.indices[j], :, t:b, l:r]
        assert np.allclose(top.crops[j, 0, 0], region[:, 0, 0].numpy())
        assert np.allclose(top.crops[j, -1, -1], region[:, -1, -1].numpy())


def test_receptive_field_matches_the_input_gradient(trained):
    model, data = trained
    rf = H.receptive_field(model, "block1.conv", data.input_shape)
    assert (rf.size, rf.jump, rf.offset) == ((3, 3), (1, 1), (-1, -1))
    assert H.receptive_field(model, "block2.conv", data.input_shape).size == (8, 8)
    assert H.receptive_field(model, "fc.relu", data.input_shape).box(0, 0) == (0, 32, 0, 32)
    # every input pixel that moves block2.conv at (5, 6) lies inside the computed box
    copy = snapshot(model)
    x = data.x_val[:8].clone().requires_grad_(True)
    _, outs = H.record_outputs(copy, x, ["block2.conv"], grad=True)
    (g,) = torch.autograd.grad(outs["block2.conv"][:, 0, 5, 6].sum(), [x])
    rows, cols = torch.nonzero(g.abs().sum((0, 1)), as_tuple=True)
    t, b, l, r = H.receptive_field(model, "block2.conv", data.input_shape).box(5, 6)
    assert rows.numel() > 0 and rows.min() >= t and rows.max() < b and cols.min() >= l and cols.max() < r


# ----------------------------------------------------------------------------- activation maximisation
@pytest.mark.parametrize("layer", ["block2.relu", "fc.relu"])
def test_activation_maximisation_beats_the_best_example_in_the_pool(trained, layer):
    model, data = trained
    acts = capture_activations(model, data.x_val, [layer])[layer]
    means = acts.mean((2, 3)) if acts.dim() == 4 else acts
    channel = int(means.max(0).values.argmax())  # the channel the pool drives hardest
    best = float(means[:, channel].max())
    guard = Untouched(model)
    vis = H.activation_maximisation(model, layer, channel, data.input_shape, steps=128)
    guard.check()
    assert vis.image.shape == (32, 32, 3) and vis.image.min() >= 0 and vis.image.max() <= 1
    assert vis.trace.shape == (128,)
    assert vis.activation > best
    # the reported activation is the real one of the returned image
    img = torch.from_numpy(vis.image).permute(2, 0, 1)[None]
    again = capture_activations(model, img, [layer])[layer]
    assert float(H.channel_objective(again, channel)) == pytest.approx(vis.activation, rel=1e-4, abs=1e-5)


def test_layer_gallery_has_the_first_channels_of_each_layer(trained):
    model, data = trained
    gallery = run_job(H.layer_gallery_job(model, ["block1.conv", "block3.conv"], data.input_shape, channels=2, steps=3))
    assert list(gallery) == ["block1.conv", "block3.conv"]
    assert [v.channel for v in gallery["block3.conv"]] == [0, 1]
    assert hook_count(model) == 0


# ----------------------------------------------------------------------------- class selectivity
def test_selectivity_index_known_values():
    means = np.array([
        [1.0, 2.0, 0.0, -1.0, 3.0],
        [0.0, 2.0, 0.0, -3.0, 1.0],
        [0.0, 2.0, 0.0, -2.0, 1.0],
    ])
    index, preferred = H.selectivity_index(means)
    # only class 0 fires: 1; all alike: 0; dead: 0; negative means shifted to [2, 0, 1]: (2-0.5)/(2+0.5)
    np.testing.assert_allclose(index, [1.0, 0.0, 0.0, 0.6, 0.5], atol=1e-6)
    assert preferred.tolist()[:1] == [0] and preferred[3] == 0 and preferred[4] == 0
    assert (index >= 0).all() and (index <= 1).all()


def test_class_selectivity_equals_brute_force(trained):
    model, data = trained
    guard = Untouched(model)
    sel = H.class_selectivity(model, data.x_val, data.y_val, "block3.relu", batch_size=40)
    guard.check()
    a = capture_activations(model, data.x_val, ["block3.relu"])["block3.relu"].mean((2, 3))
    means = np.stack([a[data.y_val == c].mean(0).numpy() for c in range(data.num_classes)])
    np.testing.assert_allclose(sel.class_means, means, rtol=1e-4, atol=1e-6)
    index, row = H.selectivity_index(means)
    np.testing.assert_allclose(sel.index, index, atol=1e-5)
    assert sel.index.shape == (64,) and np.array_equal(sel.preferred, sel.classes[row])


def test_projections_are_two_dimensional_per_layer(trained):
    model, data = trained
    proj = run_job(H.layer_projections_job(model, data.x_val[:64], ["block1.relu", "fc.relu"]))
    assert list(proj) == ["input", "block1.relu", "fc.relu"]
    for p in proj.values():
        assert p.points.shape == (64, 2) and 0 <= p.explained.sum() <= 1 + 1e-9


# ----------------------------------------------------------------------------- jobs
def counting_job(counter: list[int], units: int = 10):
    for i in range(units):
        counter[0] += 1  # one unit of work
        yield Progress(i + 1, units, f"unit {i + 1}")
    return "finished"


def test_cancel_from_progress_stops_after_at_most_one_more_unit():
    counter, cancel = [0], threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        run_job(counting_job(counter), cancel, on_progress)
    assert counter[0] <= 3
    counter = [0]
    assert run_job(counting_job(counter), threading.Event()) == "finished" and counter[0] == 10


class CountingCNN(nn.Module):
    """Counts forward passes in a module-level list, which a deep copy shares."""

    calls = [0]

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingCNN.calls[0] += 1
        return self.head(self.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("make", [
    lambda m, x: H.activation_maximisation_job(m, "relu", 1, (3, 16, 16), steps=50),  # a forward per step
    lambda m, x: H.top_examples_job(m, x, "relu", 1, batch_size=4),  # a forward per batch
    lambda m, x: H.class_selectivity_job(m, x, torch.arange(40) % 2, "relu", batch_size=4),
])
def test_cancelling_an_analysis_stops_its_work(make):
    torch.manual_seed(0)
    model, x = CountingCNN(), torch.rand(40, 3, 16, 16)
    job = make(model, x)  # the snapshot is taken now, before any unit runs
    CountingCNN.calls[0] = 0
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        run_job(job, cancel, on_progress)
    assert CountingCNN.calls[0] <= 3
    assert hook_count(model) == 0


def wait_until_idle(runner: JobRunner) -> None:
    done = threading.Event()
    for _ in range(2000):  # a safety net, not a timing assertion
        if not runner.busy:
            return
        done.wait(0.01)
    raise AssertionError("the job runner never went idle")


def test_runner_cancels_the_previous_job_and_posts_results_and_errors():
    mailbox = Mailbox()
    runner = JobRunner(mailbox)
    started, gate, counter = threading.Event(), threading.Event(), [0]

    def blocking_job():
        for i in range(1000):
            counter[0] += 1
            started.set()
            gate.wait()
            yield Progress(i + 1, 1000)
        return "never"

    def failing_job():
        yield Progress(1, 2)
        raise ValueError("no such channel")

    try:
        runner.submit("slow", blocking_job())
        assert started.wait(10)
        runner.submit("quick", counting_job([0], 3))  # cancels "slow" after its unit in flight
        gate.set()
        wait_until_idle(runner)
        assert counter[0] <= 2
        slow, quick = mailbox.take("analysis:slow"), mailbox.take("analysis:quick")
        assert isinstance(slow, JobUpdate) and slow.state == "cancelled"
        assert quick.state == "done" and quick.result == "finished" and quick.fraction == 1.0
        runner.submit("bad", failing_job())
        wait_until_idle(runner)
        bad = mailbox.take("analysis:bad")
        assert bad.state == "error" and "no such channel" in bad.message
    finally:
        runner.close()
    assert not runner._thread.is_alive()
    with pytest.raises(RuntimeError):
        runner.submit("late", counting_job([0]))


def test_runner_runs_a_real_analysis_on_a_snapshot(trained):
    model, data = trained
    guard = Untouched(model)
    mailbox = Mailbox()
    runner = JobRunner(mailbox)
    try:
        job_id = runner.submit("probes", H.layer_probes_job(model, data.x_val[:64], data.y_val[:64],
                                                            ["block1.relu", "fc.relu"], folds=2))
        wait_until_idle(runner)
    finally:
        runner.close()
    update = mailbox.take("analysis:probes")
    assert update.job_id == job_id and update.state == "done", update.message
    assert list(update.result) == ["input", "block1.relu", "fc.relu"]
    guard.check()


def test_snapshot_is_a_frozen_eval_copy_without_hooks(trained):
    model, _ = trained
    handle = model.register_forward_hook(lambda *a: None)
    try:
        copy = snapshot(model)
    finally:
        handle.remove()
    assert hook_count(copy) == 0 and not copy.training
    assert all(p.grad is None and not p.requires_grad for p in copy.parameters())
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(copy.parameters(), model.parameters()))


def test_analysis_modules_import_neither_qt_nor_sklearn():
    code = (
        "import sys, json\n"
        "import visualizer.capture.jobs, visualizer.capture.hierarchy\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'pyqtgraph', 'shiboken6', 'sklearn'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
