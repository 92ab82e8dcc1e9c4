"""Attribution with Captum: which parts of an input drove a prediction (Qt-free).

One verb, :func:`attribute`, for every method in :data:`METHODS`; :func:`attribution_job`
runs several methods on the same samples as a cancellable
:data:`~visualizer.capture.jobs.Job` (one unit of work per method and sample, so a
cancel stops after at most one more unit).

Conventions (the same for the panel, the session and ``visualizer export``):

- The model runs on a :func:`~visualizer.capture.jobs.snapshot` (a private copy in eval
  mode with frozen parameters): the model passed in is never run, so it keeps its hooks,
  gradients, mode and weights. Captum is imported when first used.
- ``target`` is a class index (one for all samples, or one per sample); ``None`` means the
  class each sample is predicted as. For a model whose output is per position, (N, T, K),
  the attribution is for the logit of ``target`` at output position ``position`` (a
  setting, default -1: the last position), so a target is the pair (position, class).
- Float inputs: ``values`` has the input's shape. Integer inputs are token ids: the
  attribution is taken at the output of the model's first ``nn.Embedding`` and summed over
  the embedding dimension, so ``values`` is (N, T), one score per token.
- Signed values: positive is evidence for the target class, negative against it. Saliency
  and SmoothGrad over saliency are |gradient|s (unsigned); Grad-CAM is ReLU'd as usual and
  spread evenly over the input's channels (its channel sum is the upsampled map).
- Baselines (``baseline`` setting): zeros, a Gaussian blur of the input, the mean of
  ``reference`` samples, or uniform noise over their range; without ``reference`` the
  inputs themselves stand in (so pass data samples for "mean" and "uniform").
- Integrated Gradients reports its convergence delta, sum(attributions) - (f(x) - f(baseline))
  per sample: near zero when ``steps`` is enough.
- Random numbers (SmoothGrad noise, GradientSHAP's baselines and points) come from a
  private generator seeded by the ``seed`` setting: the same result for the same seed, and
  torch's global generator, which the training thread uses for dropout, is never drawn
  from. NumPy's global generator (GradientSHAP draws from it) is seeded and restored.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visualizer.capture.attribution_methods import (  # noqa: F401  (re-exported)
    BASELINES,
    DESCRIPTIONS,
    METHODS,
    SMOOTH_BASES,
    TOKEN_METHODS,
    available_methods,
)
from visualizer.capture.jobs import Job, Progress, run_job, snapshot

OCCLUSION_BATCH = 32  # occluded copies per forward pass


@dataclass
class AttributionSettings:
    """The knobs of every method, with defaults that work on the demos."""

    steps: int = 32  # Integrated Gradients: points on the path
    baseline: str = "zeros"  # zeros | blur | mean (of the reference data) | uniform (noise)
    n_samples: int = 16  # SmoothGrad and GradientSHAP: noisy copies per sample
    stdevs: float = 0.15  # noise standard deviation, as a fraction of the input's value range
    window: int = 4  # Occlusion: window edge (pixels, features or tokens)
    stride: int = 0  # Occlusion: step between windows; 0 = half the window (at least 1)
    smooth_base: str = "saliency"  # what SmoothGrad averages: saliency | integrated_gradients
    internal_batch_size: int = 32  # IG / GradientSHAP: path points per forward pass (memory)
    position: int = -1  # per-position outputs (N, T, K): which output position to explain
    blur_sigma: float = 0.0  # blur baseline: Gaussian sigma in pixels; 0 = a tenth of the image
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> AttributionSettings:
        """Settings from a dict, checked (ValueError naming the bad setting)."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown attribution setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        out = cls()
        for f in fields(cls):
            if f.name in values and values[f.name] is not None:
                raw = values[f.name]
                try:
                    value = type(getattr(out, f.name))(raw)
                except (TypeError, ValueError):
                    raise ValueError(f"attribution setting {f.name} must be a {type(getattr(out, f.name)).__name__}, got {raw!r}") from None
                setattr(out, f.name, value)
        return out.checked()

    def checked(self) -> AttributionSettings:
        def bounded(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"attribution setting {name} must be between {lo:g} and {hi:g}, got {v}")

        bounded("steps", 2, 1024)
        bounded("n_samples", 1, 512)
        bounded("stdevs", 0.0, 10.0)
        bounded("window", 1, 4096)
        bounded("stride", 0, 4096)
        bounded("internal_batch_size", 1, 4096)
        bounded("blur_sigma", 0.0, 1000.0)
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; choose one of {', '.join(BASELINES)}")
        if self.smooth_base not in SMOOTH_BASES:
            raise ValueError(f"SmoothGrad averages one of {', '.join(SMOOTH_BASES)}, not {self.smooth_base!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Attribution:
    """One method's attributions for a batch of N samples (numpy, ready for the UI).

    ``values``: the input's shape (float inputs) or (N, T) per token (token inputs);
    ``target``: (N,) the class explained; ``predicted``: (N,) the predicted class;
    ``score``: (N,) the explained logit f(x)[target]; ``delta``: (N,) Integrated Gradients'
    convergence delta, else None; ``layer``: the layer Grad-CAM used or the embedding tokens
    were attributed at; ``per_token``: True for token inputs.
    """

    method: str
    values: np.ndarray
    target: np.ndarray
    predicted: np.ndarray
    score: np.ndarray
    delta: np.ndarray | None = None
    layer: str | None = None
    per_token: bool = False
    position: int | None = None  # the output position explained, for per-position outputs

    @property
    def label(self) -> str:
        return METHODS[self.method]

    def to_dict(self) -> dict[str, Any]:
        """Plain numpy arrays and numbers (what crosses to the UI process)."""
        return asdict(self)


# --------------------------------------------------------------------------- model helpers
class _AtPosition(nn.Module):
    """A model seen through its class scores: the first tensor of its output (a tuple's or
    a dict's), and for (N, T, K) outputs one output position: (N, K)."""

    def __init__(self, model: nn.Module, position: int | None) -> None:
        super().__init__()
        self.model = model
        self.position = position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _logits(self.model(x))
        return out if self.position is None else out[:, self.position]


class _RoundedTokens(nn.Module):
    """Token ids carried as floats (Occlusion mixes them with the baseline id) -> ids."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.round().long())


def _logits(out: Any) -> torch.Tensor:
    from visualizer.capture.layers import first_tensor

    t = first_tensor(out)
    if t is None:
        raise ValueError("the model returned no tensor")
    return t


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    return p.device if p is not None else torch.device("cpu")


def first_embedding(model: nn.Module) -> tuple[str, nn.Embedding] | None:
    """The first ``nn.Embedding`` in ``model`` (name, module), or None."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            return name, m
    return None


def last_conv(model: nn.Module) -> str | None:
    """The name of the last Conv1d/Conv2d/Conv3d module, or None."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    return names[-1] if names else None


@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        np.random.set_state(state)


def _noise_tunnel_class():
    """Captum's NoiseTunnel drawing its noise from a private generator instead of torch's global one."""
    from captum.attr import NoiseTunnel

    class PrivateNoiseTunnel(NoiseTunnel):
        def __init__(self, attribution_method: Any, generator: torch.Generator) -> None:
            super().__init__(attribution_method)
            self.generator = generator

        def _add_noise_to_input(self, input: torch.Tensor, stdev: float, nt_samples_partition: int) -> torch.Tensor:
            repeated = input.repeat_interleave(nt_samples_partition, dim=0)
            size = tuple(repeated.shape)
            noise = torch.randn(size, generator=self.generator, device=self.generator.device, dtype=input.dtype)
            return repeated + stdev * noise.to(input.device)

    return PrivateNoiseTunnel


# --------------------------------------------------------------------------- baselines
def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) (or (N, C, L)) over the spatial dims, reflect-padded."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    out = x
    if x.dim() == 4:
        r_h, r_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
        kh = k[radius - r_h: radius + r_h + 1]
        kw = k[radius - r_w: radius + r_w + 1]
        out = F.conv2d(F.pad(out, (0, 0, r_h, r_h), mode="reflect") if r_h else out,
                       (kh / kh.sum()).view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
        out = F.conv2d(F.pad(out, (r_w, r_w, 0, 0), mode="reflect") if r_w else out,
                       (kw / kw.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    elif x.dim() == 3:
        r = min(radius, x.shape[2] - 1)
        kl = k[radius - r: radius + r + 1]
        out = F.conv1d(F.pad(out, (r, r), mode="reflect") if r else out, (kl / kl.sum()).view(1, 1, -1).repeat(c, 1, 1), groups=c)
    return out


def make_baseline(x: torch.Tensor, kind: str, reference: torch.Tensor | None = None, sigma: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The baseline for each sample of ``x`` (same shape): all zeros; a blurred copy
    (images); the mean of ``reference`` (or of ``x`` when no reference is given); uniform
    noise over the range of ``reference`` (or ``x``)."""
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "blur":
        if x.dim() < 3:
            raise ValueError("the blur baseline needs images or signals (N, C, H, W) or (N, C, L); use zeros or mean")
        return _blur(x, sigma if sigma > 0 else max(1.0, max(x.shape[2:]) / 10))
    ref = x if reference is None else reference.to(x.device, x.dtype)
    if ref.shape[1:] != x.shape[1:]:
        raise ValueError(f"reference samples have shape {tuple(ref.shape[1:])}, inputs {tuple(x.shape[1:])}")
    if kind == "mean":
        return ref.mean(0, keepdim=True).expand_as(x).clone()
    if kind == "uniform":
        lo, hi = float(ref.min()), float(ref.max())
        gen = generator or torch.Generator().manual_seed(0)
        u = torch.rand(x.shape, generator=gen, device=gen.device, dtype=x.dtype).to(x.device)
        return lo + (hi - lo) * u
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")


# --------------------------------------------------------------------------- requests
@dataclass
class _Request:
    model: nn.Module  # the snapshot (maybe seen through one output position)
    forward: nn.Module
    x: torch.Tensor
    methods: list[str]
    target: torch.Tensor  # (N,) long
    predicted: torch.Tensor
    score: torch.Tensor
    settings: AttributionSettings
    layer: str | None  # Grad-CAM layer
    embedding: tuple[str, nn.Embedding] | None  # token inputs: where tokens are attributed
    reference: torch.Tensor | None
    position: int | None


def _prepare(model: nn.Module, inputs: Any, methods: Sequence[str], target: Any, layer: str | None,
             reference: Any, settings: dict[str, Any]) -> _Request:
    """Check everything and take the snapshot now (in the caller's thread)."""
    s = AttributionSettings.from_dict(settings)
    methods = list(methods)
    if not methods:
        raise ValueError("no attribution method chosen")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown attribution method {m!r}; choose from {', '.join(METHODS)}")
    copy = snapshot(model)
    device = _device(copy)
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs).detach()
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"inputs must be a batch (N, ...) of at least one sample, got shape {tuple(x.shape)}")
    tokens = not x.is_floating_point()
    embedding = None
    if tokens:
        x = x.long().to(device)
        embedding = first_embedding(copy)
        if embedding is None:
            raise ValueError("integer inputs are token ids, but the model has no nn.Embedding to attribute them at")
        if int(x.min()) < 0 or int(x.max()) >= embedding[1].num_embeddings:
            raise ValueError(f"token ids must lie in [0, {embedding[1].num_embeddings}), got {int(x.min())}..{int(x.max())}")
        bad = [m for m in methods if m not in TOKEN_METHODS]
        if bad:
            raise ValueError(f"{', '.join(METHODS[m] for m in bad)} cannot explain token inputs; "
                             f"use one of {', '.join(METHODS[m] for m in TOKEN_METHODS)}")
    else:
        from visualizer.capture.layers import float_dtype

        x = x.to(device, float_dtype(copy))
        if not torch.isfinite(x).all():
            raise ValueError("the inputs contain NaN or infinite values")
    with torch.no_grad():
        try:
            raw = copy(x)
            out, plain = _logits(raw), isinstance(raw, torch.Tensor)
        except Exception as exc:
            raise ValueError(f"the model cannot run on inputs of shape {tuple(x.shape)}: {exc}") from None
    if out.dim() < 1 or out.shape[0] != x.shape[0]:
        raise ValueError(f"attribution needs the batch on the first dimension of the model's output: {x.shape[0]} "
                         f"inputs gave an output of shape {tuple(out.shape)} (a sequence-first model?)")
    position = None
    forward: nn.Module = copy if plain else _AtPosition(copy, None).eval()  # Captum needs a tensor out
    if out.dim() == 3:  # per-position outputs (N, T, K)
        if not -out.shape[1] <= s.position < out.shape[1]:
            raise ValueError(f"output position {s.position} is outside the model's {out.shape[1]} positions")
        position = s.position % out.shape[1]
        forward = _AtPosition(copy, position).eval()
        out = out[:, position]
    elif out.dim() != 2:
        raise ValueError(f"attribution needs class scores (N, K) or (N, T, K); the model returns {tuple(out.shape)}")
    k = out.shape[1]
    predicted = out.argmax(1)
    if target is None:
        tgt = predicted.clone()
    else:
        tgt = torch.as_tensor(np.asarray(target, dtype=np.int64).reshape(-1), device=device)
        if tgt.numel() == 1:
            tgt = tgt.expand(x.shape[0]).clone()
        if tgt.numel() != x.shape[0]:
            raise ValueError(f"give one target class, or one per sample ({x.shape[0]}), not {tgt.numel()}")
        if int(tgt.min()) < 0 or int(tgt.max()) >= k:
            raise ValueError(f"target class must lie in [0, {k}), got {tgt.tolist()}")
    if "grad_cam" in methods:
        layer = layer or last_conv(copy)
        modules = dict(copy.named_modules())
        if layer is None:
            raise ValueError("Layer Grad-CAM needs a convolutional layer, and the model has none")
        if layer not in modules:
            raise ValueError(f"no layer named {layer!r} in the model")
    ref = None
    if reference is not None and not tokens:
        ref = torch.as_tensor(np.asarray(reference) if not isinstance(reference, torch.Tensor) else reference)
        ref = ref.detach().float().to(device)
    return _Request(copy, forward, x, methods, tgt, predicted, out.gather(1, tgt[:, None])[:, 0], s,
                    layer if "grad_cam" in methods else None, embedding, ref, position)


def attribution_job(model: nn.Module, inputs: Any, methods: Sequence[str], target: Any = None,
                    layer: str | None = None, reference: Any = None, **settings: Any) -> Job[dict[str, Attribution]]:
    """Job: ``{method: Attribution}`` for every method in ``methods`` on the same ``inputs``.

    One unit of work per (method, sample). Bad arguments raise ValueError now, before the
    job starts; the snapshot is taken now too. ``reference``: samples of the data (for the
    "mean" and "uniform" baselines). ``settings``: see :class:`AttributionSettings`.
    """
    req = _prepare(model, inputs, methods, target, layer, reference, settings)
    return _run(req)


def attribute_job(model: nn.Module, inputs: Any, method: str, target: Any = None, layer: str | None = None,
                  reference: Any = None, **settings: Any) -> Job[Attribution]:
    """Job: one method's :class:`Attribution` (see :func:`attribution_job`)."""
    req = _prepare(model, inputs, [method], target, layer, reference, settings)

    def one() -> Job[Attribution]:
        result = yield from _run(req)
        return result[method]

    return one()


def attribute(model: nn.Module, inputs: Any, method: str, target: Any = None, layer: str | None = None,
              reference: Any = None, **settings: Any) -> Attribution:
    """Attributions of ``method`` for ``inputs`` (N, ...) to the class ``target`` (None: the
    predicted class), computed on a snapshot of ``model``; see the module docstring.

    >>> a = attribute(model, x, "integrated_gradients", steps=64)   # doctest: +SKIP
    >>> a.values.shape == x.shape, a.delta                           # doctest: +SKIP
    """
    return run_job(attribute_job(model, inputs, method, target, layer, reference, **settings))


def _run(req: _Request) -> Job[dict[str, Attribution]]:
    n = req.x.shape[0]
    total = n * len(req.methods)
    done = 0
    results: dict[str, Attribution] = {}
    for method in req.methods:
        values, deltas = [], []
        for i in range(n):
            v, d = _one(req, method, i)
            values.append(v)
            deltas.append(d)
            done += 1
            yield Progress(done, total, f"{METHODS[method]}: sample {i + 1} of {n}")
        delta = None if deltas[0] is None else np.concatenate(deltas).astype(np.float64)
        results[method] = Attribution(
            method=method,
            values=np.concatenate(values).astype(np.float32),
            target=req.target.cpu().numpy(),
            predicted=req.predicted.cpu().numpy(),
            score=req.score.detach().cpu().numpy().astype(np.float64),
            delta=delta,
            layer=req.layer if method == "grad_cam" else (req.embedding[0] if req.embedding else None),
            per_token=req.embedding is not None,
            position=req.position,
        )
    return results


def _one(req: _Request, method: str, i: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One method on sample ``i``: (values (1, ...), delta (1,) or None)."""
    s = req.settings
    x = req.x[i: i + 1]
    target = int(req.target[i])
    gen_device = x.device if x.device.type == "cuda" else torch.device("cpu")
    gen = torch.Generator(device=gen_device).manual_seed(s.seed * 1_000_003 + i)
    with warnings.catch_warnings(), _numpy_seeded(s.seed * 7919 + i), torch.enable_grad():
        warnings.simplefilter("ignore")  # Captum's notes on non-linear modules and input grads
        if req.embedding is not None:
            return _tokens(req, method, x, target, gen)
        return _floats(req, method, x, target, gen)


def _stdev(req: _Request, x: torch.Tensor) -> float:
    ref = req.reference if req.reference is not None else x
    span = float(ref.max() - ref.min())
    return req.settings.stdevs * (span if span > 0 else 1.0)


def _floats(req: _Request, method: str, x: torch.Tensor, target: int,
            gen: torch.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    import captum.attr as ca

    s, f = req.settings, req.forward
    base = make_baseline(x, s.baseline, req.reference, s.blur_sigma, gen)
    x = x.clone().requires_grad_(True)
    delta = None
    if method == "saliency":
        a = ca.Saliency(f).attribute(x, target=target, abs=True)
    elif method == "integrated_gradients":
        a, delta = ca.IntegratedGradients(f).attribute(x, base, target=target, n_steps=s.steps,
                                                       internal_batch_size=s.internal_batch_size,
                                                       return_convergence_delta=True)
    elif method == "gradient_shap":
        a = _gradient_shap(f, x, base, target, s.n_samples, _stdev(req, x), gen)
    elif method == "deeplift":
        a = ca.DeepLift(f).attribute(x, base, target=target)
    elif method == "occlusion":
        window, strides = _occlusion_window(x.shape[1:], s.window, s.stride)
        with torch.no_grad():
            a = ca.Occlusion(f).attribute(x.detach(), sliding_window_shapes=window, strides=strides,
                                          baselines=base, target=target, perturbations_per_eval=OCCLUSION_BATCH)
    elif method == "grad_cam":
        a = _grad_cam(req, x, target)
    elif method == "smoothgrad":
        tunnel = _noise_tunnel_class()
        if s.smooth_base == "saliency":
            a = tunnel(ca.Saliency(f), gen).attribute(x, nt_type="smoothgrad", nt_samples=s.n_samples,
                                                      stdevs=_stdev(req, x), target=target, abs=True)
        else:
            a = tunnel(ca.IntegratedGradients(f), gen).attribute(
                x, nt_type="smoothgrad", nt_samples=s.n_samples, stdevs=_stdev(req, x), baselines=base,
                target=target, n_steps=s.steps, internal_batch_size=s.internal_batch_size)
    else:  # pragma: no cover - checked in _prepare
        raise ValueError(method)
    values = a.detach().reshape(x.shape).float().cpu().numpy()
    return values, None if delta is None else delta.detach().reshape(-1).cpu().numpy()


def _gradient_shap(f: nn.Module, x: torch.Tensor, base: torch.Tensor, target: int, n_samples: int, stdev: float,
                   gen: torch.Generator) -> torch.Tensor:
    """Captum's GradientShap as Captum composes it (InputBaselineXGradient in a smoothgrad
    NoiseTunnel, baselines drawn from the distribution ``base``), the noise drawn from ``gen``."""
    from captum.attr import GradientShap
    from captum.attr._core.gradient_shap import InputBaselineXGradient

    shap = GradientShap(f)
    inner = InputBaselineXGradient(f, shap.multiplies_by_inputs)
    inner.gradient_func = shap.gradient_func
    tunnel = _noise_tunnel_class()(inner, gen)
    return tunnel.attribute.__wrapped__(tunnel, x, nt_type="smoothgrad", nt_samples=n_samples, stdevs=stdev,
                                        draw_baseline_from_distrib=True, baselines=base, target=target)


def _occlusion_window(shape: Sequence[int], window: int, stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window and strides over one input of ``shape``: every channel at once, ``window``
    along each spatial dim (clipped to its size)."""
    stride = stride or max(1, window // 2)
    if len(shape) == 1:
        w = min(window, shape[0])
        return (w,), (min(stride, w),)
    spatial = shape[1:]
    ws = tuple(min(window, d) for d in spatial)
    return (shape[0], *ws), (shape[0], *(min(stride, w) for w in ws))


def _grad_cam(req: _Request, x: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    module = dict(req.model.named_modules())[req.layer]
    try:
        cam = LayerGradCam(req.forward, module).attribute(x, target=target, relu_attributions=True)
    except RuntimeError as exc:
        if "not have been used in the graph" not in str(exc):
            raise
        shapes = getattr(req.model, "input_shapes", None)  # an exported program with a fixed batch size
        batch = shapes[0][0] if shapes and shapes[0] and isinstance(shapes[0][0], int) else None
        if batch is None or batch == x.shape[0]:
            raise ValueError(f"Layer Grad-CAM: the output does not depend on {req.layer} through the gradient") from None
        raise ValueError(f"Layer Grad-CAM explains one input at a time, and this exported program was exported for "
                         f"batches of {batch}: export it for batch 1 or with a dynamic batch (torch.export.Dim)") from None
    if cam.dim() not in (3, 4, 5) or x.dim() != cam.dim():
        raise ValueError(f"Grad-CAM needs a layer with maps like the input's; {req.layer} gives {tuple(cam.shape)}")
    mode = {3: "linear", 4: "bilinear", 5: "trilinear"}[cam.dim()]
    up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), mode)
    return up.expand(-1, x.shape[1], *x.shape[2:]) / x.shape[1]  # split over channels: the channel sum is the map


def _tokens(req: _Request, method: str, x: torch.Tensor, target: int,
            gen: torch.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    import captum.attr as ca

    s, f = req.settings, req.forward
    _, emb = req.embedding
    base = torch.zeros_like(x)  # token id 0 (padding) at every position
    delta = None
    if method == "saliency":
        a = ca.LayerGradientXActivation(f, emb, multiply_by_inputs=False).attribute(x, target=target).abs()
    elif method == "integrated_gradients":
        a, delta = ca.LayerIntegratedGradients(f, emb).attribute(x, base, target=target, n_steps=s.steps,
                                                                 internal_batch_size=s.internal_batch_size,
                                                                 return_convergence_delta=True)
    elif method == "deeplift":
        a = ca.LayerDeepLift(f, emb).attribute(x, base, target=target)
    elif method == "occlusion":
        w = min(s.window, x.shape[1])
        with torch.no_grad():
            a = ca.Occlusion(_RoundedTokens(f)).attribute(x.float(), sliding_window_shapes=(w,),
                                                           strides=(min(s.stride or 1, w),), baselines=0.0,
                                                           target=target, perturbations_per_eval=OCCLUSION_BATCH)
        return a.detach().float().cpu().numpy(), None
    else:  # pragma: no cover - checked in _prepare
        raise ValueError(method)
    values = a.detach().float().sum(-1).cpu().numpy()  # (1, T, D) -> (1, T)
    return values, None if delta is None else delta.detach().reshape(-1).cpu().numpy()
