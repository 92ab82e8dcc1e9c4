import copy

import numpy as np
import pytest
import torch

from tests.unit.helpers import TinyCNN, TinyMLP, image_dataset, plane_dataset
from visualizer.engine.trainer import TrainConfig, Trainer


def make(seed=0, dropout=0.2, **cfg):
    torch.manual_seed(seed)
    return Trainer(TinyMLP(dropout=dropout, batch_norm=True), plane_dataset(), TrainConfig(seed=seed, batch_size=32, **cfg), device="cpu")


def losses(trainer, n):
    trainer.run(n)
    return trainer.drain_scalars()[1]["train_loss"]


def test_same_seed_same_losses():
    assert np.array_equal(losses(make(), 40), losses(make(), 40))
    assert not np.array_equal(losses(make(seed=0), 40), losses(make(seed=1), 40))


def test_scalars_cover_every_step_without_holes():
    t = make()
    t.run(7)
    steps, first = t.drain_scalars()
    t.run(5)
    steps2, second = t.drain_scalars()
    assert list(steps) == list(range(1, 8)) and list(steps2) == list(range(8, 13))
    assert np.all(np.isfinite(first["train_loss"])) and np.all((first["train_acc"] >= 0) & (first["train_acc"] <= 1))
    assert np.allclose(second["lr"], 1e-3)


def test_per_step_learning_rate_follows_commands_across_drains():
    t = make()
    t.run(3)
    t.submit("lr", 0.05)
    t.run(2)
    steps, first = t.drain_scalars()
    t.submit("lr", 0.2)
    t.submit("momentum", 0.5)  # not an lr change
    t.run(2)
    steps2, second = t.drain_scalars()
    assert list(first["lr"]) == [1e-3] * 3 + [0.05] * 2
    assert list(steps2) == [6, 7] and list(second["lr"]) == [0.2, 0.2]


def test_recorded_accuracy_equals_the_batch_accuracy():
    t = make(dropout=0.0)  # batch norm in training mode is deterministic on the same batch
    t.run(4)
    t.drain_scalars()
    idx = t._perm[t._pos : t._pos + t.config.batch_size]  # the batch the next step draws
    model_before = copy.deepcopy(t.model)
    t.step()
    with torch.no_grad():
        expected = (model_before(t.x_train[idx]).argmax(1) == t.y_train[idx]).float().mean().item()
    assert t.drain_scalars()[1]["train_acc"][0] == pytest.approx(expected)


def test_scalar_buffer_overflow_keeps_everything():
    torch.manual_seed(0)
    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu", buffer_steps=8)
    t.run(30)
    assert t.blocks_closed == 3  # steps 1-8, 9-16, 17-24 (the benchmarks file steps by this count)
    steps, vals = t.drain_scalars()
    assert list(steps) == list(range(1, 31)) and vals["train_loss"].shape == (30,)
    assert t.blocks_closed == 4  # the draining read closed the last six


def test_evaluate_matches_a_plain_forward_pass_and_restores_mode():
    t = make()
    t.run(5)
    t.model.train()
    loss, acc = t.evaluate()
    assert t.model.training
    t.model.eval()
    with torch.no_grad():
        logits = t.model(t.x_val)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, t.y_val))
    assert float(acc) == pytest.approx(float((logits.argmax(1) == t.y_val).float().mean()))


def test_commands_apply_between_steps():
    t = make()
    t.submit("lr", 0.05)
    t.submit("weight_decay", 0.01)
    t.submit("dropout", 0.5)
    assert t.optimizer.param_groups[0]["lr"] == 1e-3  # not yet
    t.step()
    assert t.optimizer.param_groups[0]["lr"] == 0.05 and t.optimizer.param_groups[0]["weight_decay"] == 0.01
    assert t.model.drop.p == 0.5
    t.submit("optimizer", "sgd")
    t.submit("batch_size", 8)
    t.step()
    assert isinstance(t.optimizer, torch.optim.SGD) and t.config.batch_size == 8


def test_bad_command_values_are_refused_with_a_message():
    t = make()
    with pytest.raises(ValueError, match="unknown setting"):
        t.submit("colour", 1)
    t.submit("lr", -1.0)
    with pytest.raises(ValueError, match="learning rate"):
        t.step()
    with pytest.raises(ValueError, match="batch size"):
        TrainConfig(batch_size=0).validated()
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs").validated()


def test_reset_restores_initial_weights_and_losses():
    t = make()
    first = losses(t, 20)
    t.submit("reset")
    t.step()  # applies reset, then trains one step
    assert t.step_count == 1
    t.run(19)
    assert np.array_equal(first, t.drain_scalars()[1]["train_loss"])


def test_epochs_and_steps_left():
    torch.manual_seed(0)
    t = Trainer(TinyCNN(), image_dataset(n=96), TrainConfig(batch_size=10), device="cpu")
    assert t.steps_per_epoch == 7  # 72 training samples, batches of 10, last partial dropped
    t.run(3)
    assert t.steps_left_in_epoch() == 4
    assert t.epoch == pytest.approx(30 / 72)


def test_a_non_finite_loss_is_in_the_scalar_rows():
    t = make(lr=10.0, optimizer="sgd", dropout=0.0)
    with torch.no_grad():
        t.model.head.weight.fill_(float("inf"))
    t.step()
    assert not np.isfinite(t.drain_scalars()[1]["train_loss"]).all()


def test_accuracy_rows_survive_a_batch_size_change_between_reads():
    t = make(dropout=0.0)
    t.run(3)
    t.submit("batch_size", 8)  # logits of two shapes wait in one block
    t.run(2)
    idx = t._perm[t._pos : t._pos + 8]
    model_before = copy.deepcopy(t.model)
    t.step()
    with torch.no_grad():
        expected = (model_before(t.x_train[idx]).argmax(1) == t.y_train[idx]).float().mean().item()
    steps, vals = t.drain_scalars()
    assert list(steps) == list(range(1, 7)) and np.all(np.isfinite(vals["train_loss"]))
    assert vals["train_acc"][-1] == pytest.approx(expected)
    assert np.all(np.isin(vals["train_acc"][3:], np.arange(9) / 8))  # batches of 8: multiples of 1/8


class Watched(torch.nn.Module):
    """Wraps a model and keeps every training-mode output, to recompute each step's accuracy."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if self.training:
            self.seen.append(out.detach().clone())
        return out


def test_every_step_accuracy_uses_that_steps_labels_across_epochs_and_batch_size_changes():
    """Accuracy is computed for many steps at once when rows are read: each row must still be
    its own step's batch, through new permutations (256 points / 48 = 5 steps an epoch) and a
    batch size change inside one block."""
    torch.manual_seed(0)
    model = Watched(TinyMLP())
    t = Trainer(model, plane_dataset(), TrainConfig(batch_size=48), device="cpu", buffer_steps=64)
    labels = []
    for i in range(23):
        if i == 11:
            t.submit("batch_size", 20)
            t.apply_commands()
        n, b = t.x_train.shape[0], t.config.batch_size
        if t._pos + b > n:  # the step draws from the next permutation; peek at it without drawing
            state = t._data_gen.get_state()
            perm, pos = t._new_permutation(), 0
            t._data_gen.set_state(state)
        else:
            perm, pos = t._perm, t._pos
        labels.append(t.y_train[perm[pos : pos + b]])
        t.step()
    expected = [(out.argmax(1) == y).float().mean().item() for out, y in zip(model.seen, labels)]
    steps, vals = t.drain_scalars()
    assert list(steps) == list(range(1, 24))
    assert np.allclose(vals["train_acc"], expected) and len(set(expected)) > 3
