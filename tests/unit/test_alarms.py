"""Layer alarms from frame data, and the history forgetting what a rollback undid."""
import numpy as np
import torch

from visualizer.capture import alarms as A
from visualizer.capture.session import CaptureSettings, TrainingSession
from visualizer.engine.run import RunSpec, build_trainer
from visualizer.engine.trainer import TrainConfig
from visualizer.stream.frames import Frame, LayerActivation, LayerGradient, LayerInfo, ScalarChunk
from visualizer.stream.history import RunHistory


def act(name, values, dead=0.0):
    values = np.asarray(values, dtype=np.float32)
    return LayerActivation(name, (values.shape[1],), values, values, values, dead, 1.0, np.nan)


def grad(name, g, w=1.0):
    return LayerGradient(name, g, w, np.nan, np.zeros(3), np.zeros(3), np.zeros(4), np.zeros(4))


LAYERS = [LayerInfo("fc1", "Linear", (4,), 100), LayerInfo("relu", "ReLU", (4,), 0),
          LayerInfo("fc2", "Linear", (4,), 25), LayerInfo("sig", "Sigmoid", (4,), 0), LayerInfo("head", "Linear", (2,), 4)]


def test_conditions_follow_the_documented_thresholds():
    # gradient RMS: fc1 1e-6/10 = 1e-7, fc2 1e-3/5 = 2e-4, head 0.2/2 = 0.1
    grads = {"fc1": grad("fc1", 1e-6), "fc2": grad("fc2", 1e-3), "head": grad("head", 0.2, w=0.01)}
    sig = np.array([[0.001, 0.5, 0.999, 0.995], [0.01, 0.999, 0.2, 0.9999]])  # 6 of 8 within 0.02 of 0 or 1
    acts = {"relu": act("relu", np.zeros((2, 4)), dead=0.75), "sig": act("sig", sig)}
    found = A.layer_conditions(LAYERS, acts, grads)
    assert set(found) == {"fc1", "head", "relu", "sig"}
    assert found["fc1"]["vanishing"][0] == np.float64(1e-7) / 0.1  # relative to the largest RMS
    assert "fc2" not in found  # 2e-4 / 0.1 = 2e-3 >= 1e-3
    assert found["head"]["exploding"][0] == 20.0  # gradient 20x its weights: above 10x
    assert found["relu"]["dead"][0] == 0.75
    assert found["sig"]["saturated"][0] == 6 / 8
    calm = A.layer_conditions(LAYERS, {"relu": act("relu", np.ones((2, 4)), dead=0.5)},
                              {"fc1": grad("fc1", 1e-3), "head": grad("head", 1e-2)})
    assert calm == {}  # exactly half dead is not "most"; a 1e-1 RMS ratio is not vanishing


def test_tracker_remembers_the_step_an_alarm_began_and_drops_it_when_it_clears():
    tracker = A.AlarmTracker(LAYERS)
    dead, alive = {"relu": act("relu", np.zeros((2, 4)), dead=1.0)}, {"relu": act("relu", np.ones((2, 4)))}
    assert tracker.update(10, dead, {})["relu"][0]["since"] == 10
    assert tracker.update(20, dead, {})["relu"][0]["since"] == 10
    assert tracker.update(30, alive, {}) == {}
    assert tracker.update(40, dead, {})["relu"][0]["since"] == 40
    vanish = {"fc1": grad("fc1", 1e-9), "head": grad("head", 1.0)}
    assert tracker.update(50, dead, vanish)["fc1"][0]["kind"] == "vanishing"
    assert tracker.update(60, dead, {})["fc1"][0]["since"] == 50  # a frame without gradients keeps it


def test_deep_sigmoid_network_raises_vanishing_gradient_alarms_on_its_early_layers():
    torch.set_num_threads(1)
    spec = RunSpec(model="mlp", data="digits", model_options={"depth": 10, "width": 64, "activation": "sigmoid"},
                   config=TrainConfig(optimizer="sgd", lr=0.01, batch_size=64), device="cpu")
    t = build_trainer(spec)
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, val_interval_s=1e9, probe_size=8))
    s.run(5)
    s.arm()
    frame = s.step()
    alarms = frame.info["alarms"]
    rms = {n: g.grad_norm / np.sqrt(next(l.num_params for l in s.layers if l.name == n)) for n, g in frame.gradients.items()}
    expected = {n for n, r in rms.items() if r < A.VANISHING_RATIO * max(rms.values())}
    flagged = {n for n, v in alarms.items() if any(a["kind"] == "vanishing" for a in v)}
    assert flagged == expected and "hidden1.linear" in flagged and "head" not in flagged
    assert all(a["since"] == 6 for n in flagged for a in alarms[n])


def frame_at(step, loss):
    return Frame(step=step, time=0.0, scalars=ScalarChunk(np.arange(step - 1, step + 1), {"train_loss": np.array([loss, loss])}))


def test_history_forgets_what_came_after_a_rollback():
    h = RunHistory(capacity=8)
    for step in range(2, 41, 2):  # steps 1..40, the fine tier overflows into the coarse one
        h.ingest(frame_at(step, float(step)))
    h.ingest(Frame(step=40, time=0.0, activations={"relu": act("relu", np.ones((2, 4)))}))
    rolled = Frame(step=25, time=0.0, info={"rolled_back": 25}, activations={"relu": act("relu", np.ones((2, 4)))})
    h.ingest(rolled)
    steps, cols = h.metrics.data()
    assert steps.max() <= 25 and len(steps) > 0 and np.all(np.diff(steps) > 0)
    assert h.layers["relu"].data()[0].tolist() == [25]  # the per-layer series too
    h.ingest(frame_at(28, 1.0))  # training goes on from the rollback
    steps, cols = h.metrics.data()
    assert steps[-2:].tolist() == [27, 28] and np.all(np.diff(steps) > 0)


def test_saturated_tanh_demo_raises_the_saturation_alarm_recomputed_by_hand():
    """The saturated-tanh-digits demo: with lr 1.0 every tanh layer ends up at +-1; the alarm names
    exactly the tanh layers whose probe outputs lie mostly within the margin of the bounds."""
    from visualizer.ui.runner import DEMOS

    torch.set_num_threads(1)
    demo = DEMOS["saturated-tanh-digits"]
    spec = RunSpec(model=demo["model"], data=demo["data"], model_options=demo["model_options"],
                   config=TrainConfig(**demo["config"]), device="cpu")
    t = build_trainer(spec)
    s = TrainingSession(t, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, val_interval_s=1e9, probe_size=16))
    s.run(15)
    s.arm()
    frame = s.step()
    flagged = {n for n, v in frame.info["alarms"].items() if any(a["kind"] == "saturated" for a in v)}
    outs = {}  # by hand: a plain forward pass of the probe batch, eval mode
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outs.__setitem__(n, o.detach()))
             for n, m in t.model.named_modules() if isinstance(m, torch.nn.Tanh)]
    with torch.no_grad():
        t.model.eval()(s.probe_x)
    for h in hooks:
        h.remove()
    expected = {n for n, o in outs.items()
                if float((o.abs() > 1 - 2 * A.SATURATION_MARGIN).float().mean()) > A.SATURATED_FRACTION}
    assert flagged == expected and len(expected) == demo["model_options"]["depth"]
