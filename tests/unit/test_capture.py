import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.unit.helpers import TinyCNN, TinyMLP, image_dataset, plane_dataset
from visualizer.capture.layers import discover_layers, hook_count
from visualizer.capture.probes import (
    AliveUnits,
    ActivationProbe,
    GradientProbe,
    capture_activations,
    filter_images,
    histogram,
    reduce_activation,
)
from visualizer.capture.session import CaptureSettings, TrainingSession, probe_indices
from visualizer.capture.syncs import SyncCounter
from visualizer.engine.trainer import TrainConfig, Trainer

def cnn_trainer(seed=0, **cfg):
    torch.manual_seed(seed)
    return Trainer(TinyCNN(), image_dataset(), TrainConfig(seed=seed, batch_size=16, **cfg), device="cpu")


def test_layers_in_forward_order_skip_dropout_and_flatten():
    t = cnn_trainer()
    names = [l.name for l in discover_layers(t.model, t.x_val[:1])]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "head"]
    assert hook_count(t.model) == 0


def test_captured_activation_equals_plain_forward_pass():
    t = cnn_trainer()
    t.run(3)
    x = t.x_val[:6]
    acts = capture_activations(t.model, x, ["conv1", "relu2", "head"])
    assert t.model.training and hook_count(t.model) == 0  # mode restored, hooks gone
    t.model.eval()
    with torch.no_grad():
        c1 = t.model.conv1(x)
        r2 = t.model.relu2(t.model.conv2(t.model.pool1(t.model.relu1(c1))))
        out = t.model(x)
    assert torch.equal(acts["conv1"], c1) and torch.equal(acts["relu2"], r2) and torch.equal(acts["head"], out)


def test_frame_activations_equal_reduced_forward_pass():
    t = cnn_trainer()
    session = TrainingSession(t, settings=CaptureSettings(probe_size=8, map_size=4, max_channels=3))
    session.run(4)
    frame = session.capture_now()
    x = session.probe_x
    t.model.eval()
    with torch.no_grad():
        c1 = t.model.conv1(x)
        logits = t.model(x)
    t.model.train()
    a = frame.activations["conv1"]
    assert a.shape == (4, 8, 8)
    assert np.allclose(a.maps, F.adaptive_avg_pool2d(c1[:, :3], 4).numpy(), atol=1e-2)  # float16 maps
    assert np.allclose(a.channel_mean, c1.mean((2, 3)).numpy(), atol=1e-6)
    assert np.allclose(a.channel_max, c1.amax((2, 3)).numpy(), atol=1e-6)
    # not a ReLU: dead share on the probe samples; a ReLU: on every input of the validation pass
    assert a.dead_fraction == pytest.approx(float((c1 > 0).flatten(2).any(2).any(0).logical_not().float().mean()))
    assert a.dead_basis == "the probe samples"
    relu = frame.activations["relu1"]
    t.model.eval()
    with torch.no_grad():
        r1 = t.model.relu1(t.model.conv1(session.val_x))
    t.model.train()
    never_positive = (r1 > 0).flatten(2).any(2).any(0).logical_not().float().mean()
    assert relu.dead_fraction == pytest.approx(float(never_positive))
    assert relu.dead_basis == f"the {len(session.val_x):,} validation inputs"
    assert np.allclose(frame.probe.probs, logits.softmax(-1).numpy(), atol=1e-6)
    assert np.isfinite(a.grad_norm) and a.grad_norm > 0


def test_alive_units_count_a_unit_that_fires_on_any_input_of_any_batch():
    # unit 0 fires only on the first input, unit 1 only on the last, unit 2 never
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([-0.5, -0.5, -1.0]))
    x = torch.zeros(34, 2)
    x[0, 0] = x[-1, 1] = 1.0
    with torch.no_grad(), AliveUnits(net, ["1"]) as alive:
        for i in range(0, len(x), 16):  # uneven chunks, as the validation pass makes them
            net(x[i : i + 16])
    assert hook_count(net) == 0
    assert alive.alive["1"].tolist() == [True, True, False]
    assert float(alive.dead_fractions()["1"]) == pytest.approx(1 / 3)


def test_alive_units_over_many_batches_equal_one_pass_over_all_inputs():
    t = cnn_trainer()
    t.run(3)
    x = torch.cat([t.x_train[:10], t.x_val])  # 34 inputs
    t.model.eval()
    with torch.no_grad():
        with AliveUnits(t.model, ["relu1", "relu2", "head"]) as alive:
            for i in range(0, len(x), 16):
                t.model(x[i : i + 16])
        assert hook_count(t.model) == 0
        outs = capture_activations(t.model, x, ["relu1", "relu2", "head"])
    t.model.train()
    dead = alive.dead_fractions()
    for name, out in outs.items():
        peak = out.amax((0, 2, 3)) if out.dim() == 4 else out.amax(0)
        assert float(dead[name]) == pytest.approx(float((peak <= 0).float().mean()))


def test_activation_gradients_do_not_touch_parameter_grads():
    t = cnn_trainer()
    t.step()
    before = [p.grad.clone() for p in t.model.parameters()]
    probe = ActivationProbe(["conv1", "relu2"], t.x_val[:4], t.y_val[:4])
    probe.capture(t.model)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, t.model.parameters()))


def test_gradient_probe_norm_equals_param_grad_norm():
    t = cnn_trainer()
    probe = GradientProbe(["conv1", "conv2", "head"])
    recorded = {}

    class Spy(GradientProbe):
        def after_backward(self, model):
            super().after_backward(model)
            recorded.update({n: torch.cat([p.grad.reshape(-1) for p in getattr(model, n).parameters()]).norm() for n in self.layers})
            recorded["w"] = model.head.weight.detach().clone()

    probe = Spy(["conv1", "conv2", "head"])
    t.step(observer=probe)
    stats = probe.take()
    for name in ("conv1", "conv2", "head"):
        assert torch.allclose(stats[name]["grad_norm"], recorded[name])
        assert stats[name]["weight_hist"].sum() == sum(p.numel() for p in getattr(t.model, name).parameters())
        assert stats[name]["grad_hist"].sum() == stats[name]["weight_hist"].sum()
    assert 0 < float(stats["head"]["update_ratio"]) < 1
    w_before = torch.cat([recorded["w"].reshape(-1), t.model.head.bias.reshape(-1)])  # bias drift is tiny
    assert float(stats["head"]["weight_norm"]) == pytest.approx(float(w_before.detach().norm()), rel=1e-3)


def test_histogram_counts_like_numpy_with_outliers_and_non_finite_values_in_the_end_bins():
    g = torch.Generator().manual_seed(3)
    t = torch.randn(5000, generator=g) * 0.4
    counts = histogram(t, -1.0, 1.0, 41).numpy()
    inside = t[(t >= -1) & (t <= 1)].numpy()
    expected, _ = np.histogram(inside, bins=np.linspace(-1.0, 1.0, 42))
    expected[0] += int((t < -1).sum())
    expected[-1] += int((t > 1).sum())
    assert counts.tolist() == expected.tolist()
    odd = histogram(torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0, -1.0]), -1.0, 1.0, 4).numpy()
    assert odd.tolist() == [2, 0, 1, 2]  # -inf, -1 | NaN counts as 0 | +inf, 1


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (4, 6, 7), (4, 9)])
def test_reduced_activation_dead_fraction_and_finiteness_are_exact(shape):
    a = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    unit = -1 if len(shape) == 3 else 1  # channels (P, C, H, W), features (P, T, D), units (P, U)
    a.select(unit, 1).copy_(-torch.rand(a.select(unit, 1).shape) - 1e-3)  # one never fires on any sample
    r = reduce_activation(a, max_channels=8, map_size=4, max_units=8)
    fired = (a > 0).movedim(unit, 0).reshape(shape[unit], -1).any(1)
    assert 0 < float(r["dead_fraction"]) == pytest.approx(1.0 - fired.float().mean().item())
    assert float(r["norm"]) == pytest.approx(a.pow(2).mean().sqrt().item(), rel=1e-5)
    assert bool(r["finite"])
    huge = a.clone()
    huge.view(-1)[5] = 3e38  # finite, however large
    assert bool(reduce_activation(huge, 8, 4, 8)["finite"])
    for bad in (float("nan"), float("inf"), -float("inf")):
        b = a.clone()
        b.view(-1)[-3] = bad
        assert not bool(reduce_activation(b, 8, 4, 8)["finite"]), bad


def test_capture_does_not_change_training():
    def run(capture_every_step):
        torch.manual_seed(0)
        t = Trainer(TinyCNN(), image_dataset(), TrainConfig(batch_size=16), device="cpu")  # has dropout
        s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, probe_size=6))
        series = []
        for _ in range(25):
            if capture_every_step:
                s.arm()
            s.step()
            frame = s.mailbox.take("train")
            if frame is not None:
                series.append(frame.scalars.values["train_loss"])
        series.append(t.drain_scalars()[1]["train_loss"])
        return np.concatenate(series), s.captures

    with_capture, n = run(True)
    without, m = run(False)
    assert n == 25 and m == 0
    assert np.array_equal(with_capture, without)


def test_capture_does_not_change_batch_norm_statistics():
    def run(capture):
        torch.manual_seed(0)
        t = Trainer(TinyMLP(dropout=0.3, batch_norm=True), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
        s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0))
        for _ in range(10):
            if capture:
                s.arm()
            s.step()
        return t.model.bn1.running_mean.clone()

    assert torch.equal(run(True), run(False))


def test_no_host_synchronisation_on_unarmed_steps():
    for optimizer in ("sgd", "adam", "adamw"):
        t = cnn_trainer(optimizer=optimizer)
        s = TrainingSession(t)
        s.step()  # warm-up outside the counter
        with SyncCounter() as counter:
            for _ in range(5):
                s.step()
        assert counter.calls == [], f"{optimizer}: {counter.calls}"
        s.arm()
        with SyncCounter() as counter:
            s.step()
        assert counter.calls, "the counter must see the syncs of an armed step"


def test_no_hooks_remain_after_capture_even_after_an_exception():
    t = cnn_trainer()
    s = TrainingSession(t)
    s.arm()
    s.step()
    s.capture_now()
    assert hook_count(t.model) == 0

    def boom(*_):
        raise RuntimeError("broken layer")

    handle = t.model.relu2.register_forward_hook(boom)
    with pytest.raises(RuntimeError):
        s.capture_now()
    handle.remove()
    assert hook_count(t.model) == 0


def test_cadence_is_limited_by_every_k_steps():
    t = cnn_trainer()
    s = TrainingSession(t, settings=CaptureSettings(every_k_steps=5, max_rate_hz=1e9, budget=1.0))
    captured = []
    for _ in range(20):
        s.arm()
        if s.step() is not None:
            captured.append(t.step_count)
    assert captured == [1, 6, 11, 16]


def test_frames_carry_every_step_and_validation():
    t = cnn_trainer()
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, val_interval_s=0.0))
    s.run(5)
    s.arm()
    s.step()
    frame = s.mailbox.take("train")
    assert list(frame.scalars.steps) == [1, 2, 3, 4, 5, 6]
    assert set(frame.gradients) == {"conv1", "conv2", "head"}
    assert frame.val is None  # validation runs after the frame is sent: it rides on the next one
    loss, acc = t.evaluate()
    s.run(2)
    s.arm()
    s.step()
    later = s.mailbox.take("train")
    assert list(later.scalars.steps) == [7, 8, 9] and later.val["step"] == 6
    assert later.val["val_acc"] == pytest.approx(float(acc)) and later.val["val_loss"] == pytest.approx(float(loss))


def test_a_paused_frame_carries_the_validation_of_its_own_state():
    t = cnn_trainer()
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, val_interval_s=0.0))
    s.play()
    s._apply_controls()
    s.run(4)
    s.pause()
    s._apply_controls()  # pausing captures the state it stopped at
    frame = s.mailbox.take("train")
    loss, acc = t.evaluate()
    assert frame.step == 4 and frame.val["step"] == 4
    assert frame.val["val_acc"] == pytest.approx(float(acc)) and frame.val["val_loss"] == pytest.approx(float(loss))


def test_filters_are_kernels_as_images():
    t = cnn_trainer()
    f = filter_images(t.model, ["conv1", "conv2", "head"], (3, 8, 8))
    assert torch.equal(f["conv1"], t.model.conv1.weight.detach().permute(0, 2, 3, 1))
    assert torch.allclose(f["conv2"], t.model.conv2.weight.detach().mean(1))
    assert "head" not in f


def test_probe_batch_covers_every_class():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    idx = probe_indices(labels, 6)
    assert sorted(labels[idx].tolist()) == [0, 0, 1, 1, 2, 2]


def test_nan_weights_pause_and_roll_back_to_the_last_good_snapshot():
    t = cnn_trainer()
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0))
    s.playing = True
    with torch.no_grad():
        t.model.head.weight.fill_(float("nan"))
    s.arm()
    frame = s.step()
    assert not s.playing
    error = s.mailbox.take("error")
    report = error["nonfinite"]
    assert "diverged" in error["message"] and report["step"] == 1 and report["rolled_back_to"] == 0
    assert not report["reproduced"]  # put in from outside, so the replay from the snapshot cannot find it
    assert frame.step == 0 and frame.info["rolled_back"] == 0 and t.step_count == 0
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def wait_for_update(mailbox, stream, state, timeout=60.0):
    """Wait (on a condition, polled) until the analysis posts ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        update = mailbox.take(stream)
        if update is not None and update.state == state:
            return update
        time.sleep(0.01)
    return None


def test_analyses_run_on_a_snapshot_between_steps_and_post_results():
    from visualizer.capture.layers import hook_count

    t = cnn_trainer()
    s = TrainingSession(t)
    s.run(3)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    s.request_analysis("probe", "layer_probes")
    s.request_analysis("bad", "no-such-analysis")
    s._apply_controls()
    update = wait_for_update(s.mailbox, "analysis:probe", "done")
    assert update is not None and update.tag["step"] == 3 and update.tag["kind"] == "layer_probes"
    assert list(update.result)[0] == "input" and set(update.result) == {"input", *s.layer_order}
    assert all(0 <= a <= 1 for a in update.result.values())
    error = s.mailbox.take("analysis:bad")
    assert error.state == "error" and "unknown analysis" in error.message
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert hook_count(t.model) == 0
    s.close()


def test_an_expensive_or_cold_capture_never_stalls_frames_longer_than_the_cap():
    """The capture budget sets the idle gap after a capture (cost x 74 for two thirds of 2 %), but never beyond
    ``max_capture_gap_s``; the first capture is cold, so the second comes at once and its cost replaces it."""
    from tests.unit.helpers import TinyMLP, plane_dataset
    from visualizer.capture.session import CaptureSettings, TrainingSession
    from visualizer.engine.trainer import TrainConfig, Trainer

    torch.set_num_threads(1)
    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, max_capture_gap_s=4.0))
    s.arm()
    s.step()  # the first capture
    assert s.captures == 1
    s._capture_cost = 1.0  # as if that cold capture had taken a second: the budget alone would wait 74 s
    s.arm()
    assert s.step() is not None and s.captures == 2  # at once: the second capture's cost replaces the cold one
    assert s._capture_cost < 1.0
    s._capture_cost = 1.0  # an expensive model: a second a capture
    s.arm()
    s._last_capture_end = time.monotonic() - 4.5  # 4.5 s ago (set, not waited for)
    assert s._due()
    s._last_capture_end = time.monotonic() - 3.0
    assert not s._due()


def test_the_cadence_counts_the_session_clock_and_a_capture_costs_its_own_work_not_the_step():
    """Captures are spaced by the session's clock (a benchmark stops it between its windows), and
    a capture's cost is the probes' and publishing time: the training step would have run anyway."""
    from tests.unit.helpers import TinyMLP, plane_dataset

    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    now = [100.0]
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=0.03), clock=lambda: now[0])
    plain_step = t.step

    def slow_step(*args, **kwargs):  # a step that takes 0.3 s, as a big model's would
        time.sleep(0.3)
        return plain_step(*args, **kwargs)

    t.step = slow_step
    for _ in range(2):  # the first capture is cold; the second one's cost replaces it
        now[0] += 60.0
        s.arm()
        assert s.step() is not None
    t.step = plain_step
    assert 0 < s._capture_cost < 0.3  # the 0.3 s step is not part of it
    gap = s._capture_cost * (1 - 0.02) / 0.02  # captures get two thirds of the 3 % budget
    for _ in range(10):  # the clock stands still: however many steps run, no capture is due
        s.arm()
        assert s.step() is None
    now[0] += gap * 0.9
    s.arm()
    assert s.step() is None
    now[0] += gap * 0.2
    s.arm()
    assert s.step() is not None and s.captures == 3


def test_a_capture_is_charged_for_the_slower_steps_it_leaves_behind(monkeypatch):
    """The steps right after a capture run on caches its work made cold: the first eight are timed
    against the next eight, and the difference counts in the cost that spaces captures."""
    from tests.unit.helpers import TinyMLP, plane_dataset

    t = Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    now = [100.0]
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=0.03, max_capture_gap_s=1e9),
                        clock=lambda: now[0])
    host = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: host[0])  # host time passes only in training steps
    plain_step, since_capture = t.step, [0]

    def step(*args, **kwargs):  # 2 ms for the eight steps after a capture, 1 ms after that
        since_capture[0] += 1
        host[0] += 0.002 if since_capture[0] <= 8 else 0.001
        return plain_step(*args, **kwargs)

    t.step = step

    def capture() -> None:
        now[0] += 60.0
        s.arm()
        assert s.step() is not None
        since_capture[0] = 0

    capture()
    assert s._aftermath is None  # the first capture is cold: what follows it says nothing
    capture()
    for _ in range(16):
        assert s.step() is None
    assert s._aftermath_cost == pytest.approx(0.008) and s._capture_cost == 0.0
    gap = 0.008 * (1 - 0.02) / 0.02  # captures get two thirds of the 3 % budget
    now[0] += gap * 0.95
    s.arm()
    assert s.step() is None
    now[0] += gap * 0.1
    s.arm()
    assert s.step() is not None
    since_capture[0] = 0
    t.submit("lr", 0.01)  # new settings change the step time: this capture's wake is not measured
    for _ in range(16):
        s.step()
    assert s._aftermaths == 1 and s._aftermath_cost == pytest.approx(0.008)
    capture()
    s.capture_now()  # paused right after it: the steps after the pause are not that capture's wake
    for _ in range(16):
        s.step()
    assert s._aftermaths == 1
    t.step = plain_step
    s.close()


def test_a_capture_leaves_no_reference_cycles():
    """Everything a capture makes is freed when its frame is dropped: nothing waits for the
    garbage collector's full passes, which pause the training loop for tens of milliseconds."""
    import gc

    from tests.unit.helpers import TinyMLP, plane_dataset

    for trainer in (cnn_trainer(), Trainer(TinyMLP(), plane_dataset(), TrainConfig(batch_size=16), device="cpu")):
        s = TrainingSession(trainer, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, val_interval_s=0.0))
        s.arm()
        s.step()  # the first capture: caches, lazy imports
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            s.arm()
            s.step()
            s.capture_now()
            s.mailbox.take("train")
            gc.collect()
            kinds = sorted({type(o).__name__ for o in gc.garbage})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert kinds == []


def test_an_output_followed_by_an_in_place_relu_is_kept_as_the_layer_computed_it():
    from visualizer.capture.probes import record_outputs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        conv = model[0](x).clone()
    _, outs = record_outputs(model, x, ["0", "1"])
    assert conv.min() < 0
    torch.testing.assert_close(outs["0"], conv)  # not the ReLU's overwrite of it
    torch.testing.assert_close(outs["1"], conv.clamp(min=0))
    assert model[1].inplace is True  # the flag is restored


class _EditsInPlace(nn.Module):
    """A person's forward that rectifies and scales a layer's output in place."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        h = self.conv(x)
        h *= 2
        h.relu_()
        return self.head(h.flatten(1))


@pytest.mark.parametrize("grad", [False, True])
def test_an_output_the_forward_edits_in_place_is_kept_as_the_layer_computed_it(grad):
    from visualizer.capture.probes import record_outputs

    torch.manual_seed(0)
    model = _EditsInPlace()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        conv = model.conv(x)
        logits = model(x)
    out, outs = record_outputs(model, x, ["conv", "head"], grad=grad)
    assert conv.min() < 0
    torch.testing.assert_close(outs["conv"], conv)  # not the *= 2 and relu_ written over it
    torch.testing.assert_close(out, logits)  # the model still computes what it always did
    torch.testing.assert_close(outs["head"], logits)
    if grad:  # the kept output is still on the path to the output: its gradient is the real one
        (g,) = torch.autograd.grad(out.sum(), [outs["conv"]])
        expected = (model.head.weight.sum(0).reshape(4, 6, 6) * 2 * (conv > 0)).expand_as(g)
        torch.testing.assert_close(g, expected)
