"""Attribution (Captum): exact values on linear models, completeness on a CNN, shapes,
per-token scores, the model left untouched, and cancellation counted in units of work."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.unit.test_hierarchy import Untouched
from visualizer.capture import attribution as A
from visualizer.capture.jobs import Cancelled, JobRunner, run_job
from visualizer.capture.layers import hook_count
from visualizer.engine.models import build_model
from visualizer.stream.mailbox import Mailbox


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SHAPE = (3, 8, 8)


def linear_image_model(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    """logits = W · flatten(x) + b for images of SHAPE; ``weight`` is (K, 3*8*8)."""
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(torch.zeros(weight.shape[0]) if bias is None else bias)
    return nn.Sequential(nn.Flatten(), lin)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    model = build_model("cnn", (3, 16, 16), 4, channels=(4, 8), hidden=16)
    model.train()  # analyses must run on an eval copy and leave this mode alone
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return model, x


# ----------------------------------------------------------------------------- exact values
@pytest.mark.parametrize("baseline", ["zeros", "mean"])
def test_integrated_gradients_on_a_linear_model_is_input_minus_baseline_times_weight(baseline):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3 * 8 * 8, generator=g)
    model = linear_image_model(w, torch.randn(4, generator=g))
    x = torch.rand(5, *SHAPE, generator=g)
    reference = torch.rand(20, *SHAPE, generator=g)
    a = A.attribute(model, x, "integrated_gradients", target=2, reference=reference, baseline=baseline, steps=8)
    base = torch.zeros(SHAPE) if baseline == "zeros" else reference.mean(0)
    expected = (x - base) * w[2].reshape(SHAPE)
    assert a.values.shape == x.shape
    np.testing.assert_allclose(a.values, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(a.delta) < 1e-4)  # a straight line: the integral is exact
    assert list(a.target) == [2] * 5


def test_occlusion_lights_up_only_the_pixels_the_model_reads():
    read = torch.zeros(SHAPE, dtype=torch.bool)
    read[:, 2:4, 5:7] = True  # the model reads a 2x2 patch (all channels) and nothing else
    read[1, 6, 1] = True
    g = torch.Generator().manual_seed(3)
    w = torch.randn(2, 3 * 8 * 8, generator=g) * read.reshape(1, -1)
    model = linear_image_model(w)
    x = torch.rand(2, *SHAPE, generator=g) + 0.1
    a = A.attribute(model, x, "occlusion", target=0, window=1, stride=1)
    # window 1 covers all channels of one pixel: f(x) - f(x without pixel p) = sum_c w_c,p x_c,p, shared by its channels
    per_pixel = (x * w[0].reshape(SHAPE)).sum(1, keepdim=True).expand_as(x)
    np.testing.assert_allclose(a.values, per_pixel.numpy(), rtol=1e-4, atol=1e-6)
    # f(x) - f(x') of a float32 sum leaves rounding noise (~1e-7 of the scores) on unread pixels
    score = np.abs(a.values).sum((0, 1))
    lit = score > 1e-5 * score.max()
    assert np.array_equal(lit, read.any(0).numpy())


def test_saliency_on_a_linear_model_is_the_absolute_weight():
    g = torch.Generator().manual_seed(4)
    w = torch.randn(3, 3 * 8 * 8, generator=g)
    x = torch.rand(2, *SHAPE, generator=g)
    a = A.attribute(linear_image_model(w), x, "saliency", target=[1, 2])
    np.testing.assert_allclose(a.values[0], w[1].abs().reshape(SHAPE).numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.values[1], w[2].abs().reshape(SHAPE).numpy(), rtol=1e-6)


def test_integrated_gradients_on_the_cnn_is_complete(cnn):
    model, x = cnn
    a = A.attribute(model, x, "integrated_gradients", steps=128)
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x)
            fx = logits.gather(1, torch.as_tensor(a.target)[:, None])[:, 0]
            fb = model(torch.zeros_like(x)).gather(1, torch.as_tensor(a.target)[:, None])[:, 0]
    finally:
        model.train()
    gap = (fx - fb).numpy()
    sums = a.values.reshape(len(x), -1).sum(1)
    np.testing.assert_allclose(a.delta, sums - gap, atol=1e-4)  # the delta is what it says it is
    assert np.all(np.abs(sums - gap) <= 0.02 * np.abs(gap).max() + 1e-3)  # small: completeness holds
    np.testing.assert_allclose(a.score, fx.numpy(), rtol=1e-5)
    assert np.array_equal(a.predicted, logits.argmax(1).numpy()) and np.array_equal(a.target, a.predicted)


def test_grad_cam_matches_a_hand_computed_cam(cnn):
    model, x = cnn
    layer = "block2.conv"
    a = A.attribute(model, x, "grad_cam", target=1, layer=layer)
    model.eval()
    acts = {}
    h = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    try:
        xr = x.clone().requires_grad_(True)
        out = model(xr)
        grad, = torch.autograd.grad(out[:, 1].sum(), acts["a"])
    finally:
        h.remove()
        model.train()
    cam = F.relu((grad.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear")
    np.testing.assert_allclose(a.values.sum(1), cam[:, 0].detach().numpy(), rtol=1e-4, atol=1e-6)
    assert a.layer == layer


@pytest.mark.parametrize("method", list(A.METHODS))
def test_every_method_returns_the_input_shape_and_leaves_the_model_alone(cnn, method):
    model, x = cnn
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()  # .grad that must survive
    untouched = Untouched(model)
    grad_state = torch.is_grad_enabled()
    a = A.attribute(model, x, method, steps=8, n_samples=4, window=4)
    assert a.values.shape == x.shape and a.values.dtype == np.float32
    assert np.isfinite(a.values).all() and np.abs(a.values).sum() > 0
    assert (a.delta is not None) == (method == "integrated_gradients")
    untouched.check()  # weights, .grad, modes, no hook, torch's global RNG not drawn from
    assert hook_count(model) == 0 and torch.is_grad_enabled() == grad_state


def test_noise_is_reproducible_for_a_seed_and_private(cnn):
    model, x = cnn
    rng = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = A.attribute(model, x[:1], "smoothgrad", n_samples=4, seed=5)
    b = A.attribute(model, x[:1], "smoothgrad", n_samples=4, seed=5)
    c = A.attribute(model, x[:1], "smoothgrad", n_samples=4, seed=6)
    s1 = A.attribute(model, x[:1], "gradient_shap", n_samples=4, seed=5)
    s2 = A.attribute(model, x[:1], "gradient_shap", n_samples=4, seed=5)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    assert np.array_equal(s1.values, s2.values)
    assert torch.equal(torch.get_rng_state(), rng) and np.array_equal(np.random.get_state()[1], np_state)


def test_baselines():
    x = torch.rand(2, *SHAPE)
    ref = torch.rand(10, *SHAPE) * 2
    assert torch.equal(A.make_baseline(x, "zeros"), torch.zeros_like(x))
    assert torch.allclose(A.make_baseline(x, "mean", ref), ref.mean(0).expand_as(x))
    u = A.make_baseline(x, "uniform", ref, generator=torch.Generator().manual_seed(0))
    assert u.shape == x.shape and float(u.min()) >= float(ref.min()) and float(u.max()) <= float(ref.max())
    blurred = A.make_baseline(x, "blur", sigma=1.0)
    assert blurred.shape == x.shape
    assert torch.allclose(blurred.mean((2, 3)), x.mean((2, 3)), atol=0.05)  # a blur keeps the mean roughly
    assert float(blurred.std()) < float(x.std())  # and removes detail
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(A.make_baseline(flat, "blur"), flat)  # normalised kernel
    with pytest.raises(ValueError, match="blur baseline needs images"):
        A.make_baseline(torch.rand(3, 2), "blur")


# ----------------------------------------------------------------------------- tokens and positions
class PooledTokens(nn.Module):
    """logits = W · mean_t embed(tokens)."""

    def __init__(self, vocab: int = 12, dim: int = 5, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens).mean(1))


class PerPosition(nn.Module):
    """logits (N, T, K) = W · embed(token at t): each output position reads one token."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens))


def test_token_inputs_get_one_score_per_token_at_the_embedding():
    torch.manual_seed(0)
    model = PooledTokens()
    tokens = torch.tensor([[3, 7, 1, 9], [2, 2, 11, 5]])
    e, w = model.embed.weight.detach(), model.head.weight.detach()
    a = A.attribute(model, tokens, "integrated_gradients", target=1, steps=4)
    # linear after the embedding: per-token IG = (e[t] - e[0]) · W[target] / T, summed over the embedding dim
    expected = ((e[tokens] - e[0]) * w[1]).sum(-1) / tokens.shape[1]
    assert a.values.shape == (2, 4) and a.per_token and a.layer == "embed"
    np.testing.assert_allclose(a.values, expected.numpy(), rtol=1e-5, atol=1e-6)
    sal = A.attribute(model, tokens, "saliency", target=1)
    np.testing.assert_allclose(sal.values, np.full((2, 4), (w[1].abs() / 4).sum().item()), rtol=1e-5)
    occ = A.attribute(model, tokens, "occlusion", target=1, window=1, stride=1)
    np.testing.assert_allclose(occ.values, expected.numpy(), rtol=1e-4, atol=1e-6)  # replaced by token 0
    with pytest.raises(ValueError, match="cannot explain token inputs"):
        A.attribute(model, tokens, "grad_cam")
    with pytest.raises(ValueError, match="token ids must lie"):
        A.attribute(model, tokens + 20, "saliency")


def test_per_position_outputs_explain_one_position():
    torch.manual_seed(1)
    model = PerPosition()
    tokens = torch.tensor([[3, 7, 1, 9]])
    a = A.attribute(model, tokens, "integrated_gradients", target=2, position=1, steps=4)
    assert a.position == 1
    e, w = model.embed.weight.detach(), model.head.weight.detach()
    expected = np.zeros((1, 4), np.float32)
    expected[0, 1] = float(((e[7] - e[0]) * w[2]).sum())
    np.testing.assert_allclose(a.values, expected, atol=1e-6)
    last = A.attribute(model, tokens, "deeplift")  # default: the last position, its predicted class
    k = int(model(tokens)[0, 3].argmax())
    assert last.position == 3 and last.target[0] == k
    expected = np.zeros((1, 4), np.float32)
    expected[0, 3] = float(((e[9] - e[0]) * w[k]).sum())  # DeepLift on a linear map is exact too
    np.testing.assert_allclose(last.values, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- jobs
def test_cancel_stops_after_at_most_one_more_unit(cnn, monkeypatch):
    model, x = cnn
    calls = []
    real = A._one
    monkeypatch.setattr(A, "_one", lambda req, method, i: (calls.append((method, i)), real(req, method, i))[1])
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done == 2:
            cancel.set()

    job = A.attribution_job(model, x, ["saliency", "occlusion"], window=8)
    with pytest.raises(Cancelled):
        run_job(job, cancel, progress)
    assert seen[-1].total == 6
    assert len(calls) == 2  # the flag is checked before each unit: nothing ran after it was set

    calls.clear()
    runner = JobRunner(Mailbox())
    try:
        gate, go = threading.Event(), threading.Event()
        inner = A.attribution_job(model, x, ["saliency", "grad_cam"])

        def gated():
            for i, update in enumerate(inner):  # pause inside unit 2 until the test has cancelled
                if i == 0:
                    gate.set()
                    go.wait(10)
                yield update

        runner.submit("attr", gated())
        assert gate.wait(10)
        started = len(calls)
        runner.cancel()
        go.set()
        while runner.busy:
            threading.Event().wait(0.01)
        assert len(calls) <= started + 1
        update = runner.mailbox.take("analysis:attr")
        assert update.state == "cancelled"
    finally:
        runner.close()


def test_job_result_has_every_method_and_progress_counts_units(cnn):
    model, x = cnn
    updates = []
    out = run_job(A.attribution_job(model, x[:2], ["saliency", "integrated_gradients"], steps=8), on_progress=updates.append)
    assert list(out) == ["saliency", "integrated_gradients"]
    assert [u.done for u in updates] == [1, 2, 3, 4] and {u.total for u in updates} == {4}
    single = A.attribute(model, x[:2], "saliency")
    np.testing.assert_allclose(out["saliency"].values, single.values)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "magic"}, "unknown attribution method"),
    ({"baseline": "black"}, "unknown baseline"),
    ({"steps": 0}, "steps must be between"),
    ({"n_samples": "many"}, "n_samples must be a int"),
    ({"colour": 3}, "unknown attribution setting"),
    ({"target": 9}, "target class must lie"),
    ({"target": [0, 1]}, "one per sample"),
    ({"layer": "nope", "method": "grad_cam"}, "no layer named"),
    ({"inputs": torch.rand(2, 3, 5)}, "cannot run on inputs of shape"),
    ({"inputs": torch.full((1, 3, 16, 16), float("nan"))}, "NaN"),
    ({"inputs": torch.rand(3)}, "must be a batch"),
])
def test_bad_requests_say_what_is_wrong(cnn, kwargs, message):
    model, x = cnn
    kwargs = dict(kwargs)
    inputs = kwargs.pop("inputs", x[:1])
    method = kwargs.pop("method", "saliency")
    target = kwargs.pop("target", None)
    layer = kwargs.pop("layer", None)
    with pytest.raises(ValueError, match=message):
        A.attribution_job(model, inputs, [method], target, layer, **kwargs)
    assert hook_count(model) == 0


def test_grad_cam_on_a_dense_model_fails_clearly():
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="needs a convolutional layer"):
        A.attribute(model, torch.rand(4, 2), "grad_cam")
    assert "grad_cam" not in A.available_methods((2,))
    assert "grad_cam" in A.available_methods((3, 8, 8))
    bars = A.attribute(model, torch.rand(4, 2), "occlusion", window=1)
    assert bars.values.shape == (4, 2)


def test_session_runs_attribution_on_probe_samples():
    from visualizer.capture.session import CaptureSettings, TrainingSession, analysis_job
    from visualizer.engine.run import RunSpec, build_trainer

    spec = RunSpec(model="mlp", data="spiral", model_options={"depth": 2, "width": 8}, data_options={"n_samples": 120},
                   device="cpu")
    session = TrainingSession(build_trainer(spec), settings=CaptureSettings(probe_size=4))
    session.run(3)
    job = analysis_job(session, "attribution", {"methods": ["integrated_gradients", "occlusion"], "samples": [1, 3],
                                                "target": None, "settings": {"steps": 16, "window": 1}})
    out = run_job(job)
    x = session.probe_x[[1, 3]]
    assert out["integrated_gradients"]["values"].shape == tuple(x.shape)
    direct = A.attribute(session.trainer.model, x, "integrated_gradients", steps=16)
    np.testing.assert_allclose(out["integrated_gradients"]["values"], direct.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["integrated_gradients"]["delta"], direct.delta)
    with pytest.raises(ValueError, match="probe sample indices"):
        analysis_job(session, "attribution", {"methods": ["saliency"], "samples": [99]})
    assert hook_count(session.trainer.model) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", list(A.METHODS))
def test_cuda_model_gives_the_cpu_result(cnn, method):
    import copy

    model, x = cnn
    on_cpu = A.attribute(model, x[:1], method, steps=16, n_samples=4)
    gpu_model = copy.deepcopy(model).cuda()
    on_gpu = A.attribute(gpu_model, x[:1].cuda(), method, steps=16, n_samples=4)
    assert on_gpu.values.shape == on_cpu.values.shape and hook_count(gpu_model) == 0
    if method in ("smoothgrad", "gradient_shap"):  # noise from the device's own generator: same law, other draws
        assert np.isfinite(on_gpu.values).all()
    else:
        np.testing.assert_allclose(on_gpu.values, on_cpu.values, rtol=1e-3, atol=1e-4)
