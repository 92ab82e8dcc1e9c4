"""Snapshots, exact replay, and finding the first non-finite layer of a diverging run."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from tests.unit.helpers import TinyMLP, plane_dataset
from visualizer.capture.layers import hook_count
from visualizer.capture.session import CaptureSettings, TrainingSession
from visualizer.engine.snapshots import SnapshotKeeper, restore_snapshot, take_snapshot
from visualizer.engine.trainer import TrainConfig, Trainer

FAST = dict(max_rate_hz=1e9, budget=1.0, val_interval_s=0.0, probe_size=8)


class Net(nn.Module):
    """A person's own model: named layers, an explicit forward."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(2, width), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(width, width), nn.ReLU()
        self.fc3 = nn.Linear(width, 2)
        self.order = ["fc1", "act1", "fc2", "act2", "fc3"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class SqrtAbs(nn.Module):
    """Finite forward, infinite derivative at zero: its input's gradient goes non-finite."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs().sqrt()


class GradNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.root, self.fc2 = nn.Linear(2, 16), SqrtAbs(), nn.Linear(16, 2)
        self.order = ["fc1", "root", "fc2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.root(self.fc1(x)))


def seeded(cls, *args, seed=0):
    torch.manual_seed(seed)
    return cls(*args)


def session_for(model, lr, optimizer="sgd", every=200, seed=0):
    torch.manual_seed(seed)
    t = Trainer(model, plane_dataset(), TrainConfig(optimizer=optimizer, lr=lr, batch_size=32, seed=seed), device="cpu")
    return t, TrainingSession(t, settings=CaptureSettings(snapshot_every=every, snapshot_interval_s=0.0, **FAST))


def test_restoring_a_snapshot_replays_the_same_batches_and_dropout_masks():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t = Trainer(TinyMLP(dropout=0.5), plane_dataset(), TrainConfig(batch_size=24, lr=0.05), device="cpu")
    t.run(5)  # mid-epoch, with optimizer state
    snap = take_snapshot(t)
    first = [float(t.step()) for _ in range(12)]  # crosses an epoch boundary: a new permutation
    weights = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.submit("lr", 0.5)  # changed after the snapshot: restoring brings the old value back
    t.apply_commands()
    restore_snapshot(t, snap)
    assert t.step_count == 5 and t.config.lr == 0.05
    again = [float(t.step()) for _ in range(12)]
    assert again == first
    assert all(torch.equal(weights[k], v) for k, v in t.model.state_dict().items())
    steps, values = t.drain_scalars()
    assert steps[0] == 6 and len(steps) == 12  # scalars restart after the snapshot's step


def test_keeper_keeps_the_newest_verified_snapshot_and_the_unverified_ones():
    torch.manual_seed(0)
    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    keeper = SnapshotKeeper(every=10, max_unverified=3)
    for _ in range(60):
        if keeper.due(t.step_count):
            keeper.take(t)
        t.step()
    assert [s.step for s in keeper.snapshots] == [0, 40, 50]  # capped at 3 unverified, oldest kept
    keeper.verify(45)  # losses through step 45 were finite: snapshots 0 and 40 are good, the two newest kept
    assert [s.step for s in keeper.snapshots] == [0, 40, 50]
    keeper.verify(55)
    assert [s.step for s in keeper.snapshots] == [40, 50]
    assert keeper.before(41).step == 40 and keeper.before(60).step == 50 and keeper.before(40) is None
    assert keeper.before(60, margin=15).step == 40 and keeper.before(52, margin=30).step == 50  # else the newest


def test_keeper_spaces_snapshots_by_training_time_when_steps_are_fast():
    torch.manual_seed(0)
    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    now = [0.0]
    keeper = SnapshotKeeper(every=10, min_interval_s=1.0, clock=lambda: now[0])
    taken = []
    for per_step in [1 / 64] * 100 + [0.5] * 60 + [2**-20] * 250:  # 64 steps a second, then 2, then very fast
        if keeper.due(t.step_count):
            keeper.take(t)
            taken.append(t.step_count)
        t.step_count += 1  # the keeper counts steps and time; training itself is not needed here
        now[0] += per_step
    # 1 s of steps = 64 at first; from step 100 a step takes 0.5 s, and 10 steps (the minimum)
    # are over a second; the very fast ones from step 160 on reach the cap of 20 x 10 steps first
    assert taken == [0, 64, 101, 111, 121, 131, 141, 151, 161, 361]


def run_until_diverged(s, max_steps=400):
    while s.trainer.step_count < max_steps:
        s.run(4)
        s.arm()
        s.step()
        s.mailbox.take("train")
        error = s.mailbox.take("error")
        if error is not None:
            return error
    return None


def test_a_diverging_learning_rate_names_the_first_non_finite_layer_checked_by_a_plain_forward_pass():
    torch.set_num_threads(1)
    t, s = session_for(seeded(Net, 64), lr=10.0, every=3)
    error = run_until_diverged(s)
    assert error is not None and not s.playing
    report = error["nonfinite"]
    k, back = report["step"], report["rolled_back_to"]
    assert report["reproduced"] and back < k and t.step_count == back
    assert report["layer"] in error["message"] and str(k) in error["message"]
    assert hook_count(t.model) == 0
    # Independently: from the rolled-back state, plain steps up to k-1 stay finite ...
    for _ in range(k - 1 - back):
        assert torch.isfinite(t.step())
    # ... and a manual forward pass on step k's batch goes non-finite first in the reported layer.
    x, _ = t._next_batch()
    h, first, value = x, None, None
    with torch.no_grad():
        for name in t.model.order:
            h = getattr(t.model, name)(h)
            if first is None and not torch.isfinite(h).all():
                first, value = name, "NaN" if torch.isnan(h).any() else "inf"
    assert report["where"] == "output" and (first, value) == (report["layer"], report["value"])


def test_a_gradient_that_goes_non_finite_names_where_the_backward_pass_broke():
    torch.set_num_threads(1)
    model = GradNet()
    with torch.no_grad():
        model.fc1.weight.zero_()
        model.fc1.bias.zero_()  # fc1's output is exactly 0, where the derivative of sqrt(|x|) is infinite
    t, s = session_for(model, lr=0.1)
    error = run_until_diverged(s, max_steps=20)
    report = error["nonfinite"]
    assert report["step"] == 1 and report["where"] == "gradient" and report["layer"] == "fc1"
    # by hand: forward and loss finite; the gradient out of `root` finite, the one into it (fc1's output) not
    restore_snapshot(t, s.snapshots.before(2))
    x, y = t._next_batch()
    a = model.fc1(x)
    r = model.root(a)
    a.retain_grad(), r.retain_grad()
    loss = nn.functional.cross_entropy(model.fc2(r), y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(r.grad).all() and not torch.isfinite(a.grad).all()


def test_resuming_after_a_rollback_with_a_lower_learning_rate_trains_on():
    torch.set_num_threads(1)
    t, s = session_for(seeded(Net, 64), lr=10.0, every=3)
    s.settings.rollback_margin = 6  # the snapshot one step before the blow-up is already on the brink
    assert run_until_diverged(s) is not None
    back = t.step_count
    s.submit("lr", 0.05)
    s._apply_controls()
    s.run(30)
    s.arm()
    frame = s.step()
    assert t.step_count == back + 31 and t.config.lr == 0.05
    assert np.isfinite(frame.scalars.values["train_loss"]).all() and s.mailbox.take("error") is None
    assert frame.scalars.steps[0] == back + 1  # the history continues from the rollback


def test_headless_train_reports_the_first_non_finite_layer_and_exits_non_zero(capsys):
    from visualizer.cli import EXIT_NONFINITE, main

    torch.set_num_threads(1)
    code = main(["train", "--model", "mlp", "--data", "spiral", "--optimizer", "sgd", "--lr", "10", "--steps", "300",
                 "--threads", "1", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == EXIT_NONFINITE != 0
    assert out["stopped"] == "non-finite" and 0 < out["step"] < 300
    assert out["first_nonfinite_layer"].startswith("hidden") and out["rolled_back_to"] < out["step"]


@pytest.mark.parametrize("every", [1, 7])
def test_snapshots_do_not_change_training(every):
    """Taking snapshots (every step or every few) leaves the losses bit-identical to a plain trainer."""
    torch.set_num_threads(1)
    torch.manual_seed(5)
    init = TinyMLP(dropout=0.3).state_dict()
    model = TinyMLP(dropout=0.3)
    model.load_state_dict(init)
    t, s = session_for(model, lr=1e-2, optimizer="adam", every=every, seed=3)
    s.run(20)
    watched = t.drain_scalars()[1]["train_loss"]
    plain_model = TinyMLP(dropout=0.3)
    plain_model.load_state_dict(init)
    plain = Trainer(plain_model, plane_dataset(), TrainConfig(optimizer="adam", lr=1e-2, batch_size=32, seed=3), device="cpu")
    plain.run(20)
    assert len(s.snapshots.snapshots) >= 2 and np.array_equal(watched, plain.drain_scalars()[1]["train_loss"])


def test_snapshot_steps_do_not_synchronise_with_the_host():
    from visualizer.capture.syncs import SyncCounter

    torch.set_num_threads(1)
    for optimizer in ("sgd", "adam"):
        t, s = session_for(TinyMLP(), lr=1e-2, optimizer=optimizer, every=2)
        s.run(2)
        with SyncCounter() as counter:
            s.run(6)  # three of them take a snapshot
        assert counter.calls == [], f"{optimizer}: {counter.calls}"
        assert [x.step for x in s.snapshots.snapshots] == [0, 4, 6]  # at most 3 unverified: the oldest stays


def test_a_long_run_keeps_memory_bounded_and_leaves_no_hook_or_thread():
    import threading

    torch.set_num_threads(1)
    threads = set(threading.enumerate())
    t, s = session_for(TinyMLP(), lr=1e-2, optimizer="adam", every=50)
    s.settings.max_rate_hz = 1e9
    for i in range(60):  # 1,500 steps, captured every 25
        s.run(24)
        s.arm()
        s.step()
        s.mailbox.take("train")
        if i % 30 == 0:
            s.request_analysis("probe", "layer_probes")
            s._apply_controls()
    s.close()
    assert t.step_count == 1500 and hook_count(t.model) == 0
    assert not {x for x in set(threading.enumerate()) - threads if x.is_alive()}
    assert len(s.snapshots.snapshots) <= 3  # two verified ones and the newest
    assert not t._pending and not t._rows and len(t._lr_log) == 1  # every scalar was handed on


class Scrubbed(GradNet):
    """sqrt(|x|) at 0 makes fc1's gradient NaN; nan_to_num then hides fc1's NaN weights from the
    loss, which stays finite for ever: only a gradient check can see the run broke."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.nan_to_num(self.root(self.fc1(x)), nan=0.0))


def test_a_non_finite_gradient_that_never_reaches_the_loss_is_caught_and_its_step_named():
    torch.set_num_threads(1)
    model = Scrubbed()
    with torch.no_grad():
        model.fc1.weight.zero_()
        model.fc1.bias.zero_()
    t, s = session_for(model, lr=0.1, every=1)
    s.run(3)  # uncaptured steps: nothing is read; the NaN weights wait for the next captured step
    assert s.mailbox.take("error") is None
    s.arm()
    s.step()
    error = s.mailbox.take("error")
    assert error is not None, "a NaN gradient with a finite loss went unnoticed"
    report = error["nonfinite"]
    assert report["step"] == 1 and report["layer"] == "fc1" and report["reproduced"]
    # by hand, on a fresh copy: every loss finite, fc1's weight gradient NaN from the first step
    plain = Scrubbed()
    with torch.no_grad():
        plain.fc1.weight.zero_()
        plain.fc1.bias.zero_()
    p = Trainer(plain, plane_dataset(), TrainConfig(optimizer="sgd", lr=0.1, batch_size=32, seed=0), device="cpu")
    losses = torch.stack([p.step() for _ in range(4)])
    assert torch.isfinite(losses).all() and not torch.isfinite(plain.fc1.weight).all()


def test_huge_but_finite_weights_and_gradients_are_no_false_alarm():
    """The captured check is exact: gradients whose 2-norm overflows float32 do not stop training."""

    class Loud(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * 1e24  # loss and gradients ~1e24: their squares overflow float32

    torch.set_num_threads(1)
    model = seeded(Loud)
    t, s = session_for(model, lr=1e-30, every=1)
    s.arm()
    frame = s.step()
    assert s.mailbox.take("error") is None and not frame.info["nonfinite"]
    grads = torch.cat([model.fc.weight.grad.flatten(), model.fc.bias.grad.flatten()])
    assert torch.isfinite(grads).all() and not torch.isfinite(torch.linalg.vector_norm(grads))  # a norm would overflow


class Spike(nn.Module):
    """Infinite wherever its input exceeds ``threshold``, clamped away by the next layer: the loss
    and every gradient stay finite whatever it outputs."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > self.threshold, torch.full_like(x, float("inf")), x)


class SpikeNet(nn.Module):
    def __init__(self, threshold: float = 1e9) -> None:
        super().__init__()
        self.fc1, self.spike, self.fc2 = nn.Linear(2, 16), Spike(threshold), nn.Linear(16, 2)
        self.order = ["fc1", "spike", "fc2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.spike(self.fc1(x)).clamp(max=1.0))


def captured_errors(s, rounds: int) -> list:
    errors = []
    for _ in range(rounds):
        s.run(2)
        s.arm()
        s.step()
        s.mailbox.take("train")
        errors.append(s.mailbox.take("error"))
    return errors


def test_a_non_finite_activation_hidden_from_the_loss_is_caught_on_a_captured_step():
    torch.set_num_threads(1)
    model = seeded(SpikeNet)
    t, s = session_for(model, lr=0.01, every=1)
    assert captured_errors(s, 2) == [None, None]
    model.spike.threshold = 0.5  # from now on the layer's output goes infinite (loss and gradients stay finite)
    first = t.step_count + 1
    error = captured_errors(s, 1)[0]
    assert error is not None
    report = error["nonfinite"]
    assert (report["layer"], report["where"], report["value"]) == ("spike", "output", "inf")
    # the replay starts from a snapshot no later than the last good frame (step first - 1) and names
    # the first replayed step whose output is infinite (the changed layer makes every replayed step so)
    assert report["rolled_back_to"] < report["step"] <= first and report["reproduced"]
    assert report["step"] == report["rolled_back_to"] + 1
    # by hand: spike's output on a training batch is infinite, the loss finite
    x, y = t._next_batch()
    with torch.no_grad():
        h = model.spike(model.fc1(x))
        loss = nn.functional.cross_entropy(model.fc2(h.clamp(max=1.0)), y)
    assert torch.isinf(h).any() and torch.isfinite(loss)


def test_outputs_non_finite_by_design_from_the_start_are_no_alarm():
    """A layer that outputs -inf or inf from the first step on (a mask, say) does not stop training."""
    torch.set_num_threads(1)
    t, s = session_for(seeded(SpikeNet, 0.0), lr=0.01, every=1)
    assert captured_errors(s, 3) == [None, None, None] and t.step_count == 9
