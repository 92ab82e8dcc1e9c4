"""Layer-by-layer analyses that show a hierarchy of features forming: linear probes,
2-D projections, top-activating examples, activation maximisation, class selectivity.

Every analysis comes twice: ``name_job(...)`` returns a :data:`~visualizer.capture.jobs.Job`
(a generator yielding progress between units of work, for a
:class:`~visualizer.capture.jobs.JobRunner`), and ``name(...)`` runs that job to its result
in the calling thread. Both take a :func:`~visualizer.capture.jobs.snapshot` of the model
first, in the caller's thread, so the model being trained is never used by the analysis.

Analyses run in eval mode (no dropout, batch-norm running statistics) under
``torch.no_grad`` (activation maximisation takes gradients with respect to its input only,
with ``torch.autograd.grad``; the copy's parameters are frozen). They draw random numbers
from their own seeded generators and never from torch's global one, which they leave
untouched: forking and restoring the global state, as the training-thread probes do, would
rewind the trainer's random numbers when it runs in another thread. Hooks are removed in
``finally`` (``record_outputs``).

Results are numpy arrays and plain numbers, ready to cross to the UI thread.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visualizer.capture.jobs import Job, Progress, run_job, snapshot
from visualizer.capture.layers import discover_layers, first_tensor
from visualizer.capture.probes import record_outputs

INPUT = "input"
DEFAULT_MAX_FEATURES = 256


# --------------------------------------------------------------------------- helpers
def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    return p.device if p is not None else torch.device("cpu")


def _as_input(x: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x).detach()
    return (t.float() if t.is_floating_point() else t).to(device)


def _as_labels(y: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    return np.asarray(y).astype(np.int64).reshape(-1)


def _layer_names(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None) -> list[str]:
    if layers is not None:
        return list(layers)
    with torch.no_grad():
        return [l.name for l in discover_layers(model, x[:1])]


@contextlib.contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (the mode is restored after); no global RNG fork (see module doc)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _batches(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, max(1, batch_size))]


def _record(model: nn.Module, x: torch.Tensor, layers: Sequence[str], grad: bool = False) -> dict[str, torch.Tensor]:
    _, outs = record_outputs(model, x, layers, grad=grad)
    missing = [n for n in layers if n not in outs]
    if missing:
        raise ValueError(f"layer(s) not reached by the forward pass: {', '.join(missing)}")
    return outs


# --------------------------------------------------------------------------- features
def pooled_side(channels: int, height: int, width: int, max_features: int = DEFAULT_MAX_FEATURES) -> int:
    """Side ``s`` of the s x s grid a (C, H, W) map is average-pooled to for the probes:
    the smallest s with C * s * s >= max_features (so that, after the projection of
    :func:`pool_features`, every map has the same number of values), at least 1 and at
    most min(H, W)."""
    s = math.ceil(math.sqrt(max_features / max(1, channels)))
    return max(1, min(s, height, width))


@lru_cache(maxsize=64)
def _projection_cpu(d_in: int, d_out: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + d_in * 7919 + d_out)
    return torch.randn(d_in, d_out, generator=g) / math.sqrt(d_out)


def random_projection(d_in: int, d_out: int, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """A fixed Gaussian (d_in, d_out) matrix for a (d_in, seed) pair: the same at every call,
    so probes recomputed during training see the same projection."""
    return _projection_cpu(int(d_in), int(d_out), int(seed)).to(device)


def pool_features(a: torch.Tensor, max_features: int = DEFAULT_MAX_FEATURES, seed: int = 0) -> torch.Tensor:
    """A layer output (N, ...) as at most ``max_features`` comparable features per sample.

    The rule, so that layers are compared on the same number of values and a wide layer
    does not beat a narrow one only by having more features than there are samples to fit
    a probe on:

    - feature maps (N, C, H, W) are average-pooled to s x s, s = :func:`pooled_side`: the
      smallest grid with C * s * s >= max_features (1 x 1 when C >= max_features), then
      flattened;
    - sequences (N, T, D) are averaged over the T positions;
    - anything else is flattened;
    - whatever is wider than ``max_features`` is then mapped down to exactly
      ``max_features`` by a fixed seeded Gaussian random projection (distances and linear
      separability are roughly kept: Johnson-Lindenstrauss).

    So every layer with at least max_features values is probed on exactly max_features;
    smaller layers (a 128-unit dense layer, the logits) keep all theirs. The raw input goes
    through the same rule (3x32x32 -> 3x10x10 = 300 -> 256).
    """
    a = a.detach().float()
    if a.dim() == 4:
        s = pooled_side(a.shape[1], a.shape[2], a.shape[3], max_features)
        a = F.adaptive_avg_pool2d(a, (s, s))
    elif a.dim() == 3:
        a = a.mean(1)
    a = a.reshape(a.shape[0], -1)
    if a.shape[1] > max_features:
        a = a @ random_projection(a.shape[1], max_features, seed, a.device)
    return a


def layer_features_job(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    layers: Sequence[str] | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
    batch_size: int = 256,
    seed: int = 0,
) -> Job[dict[str, np.ndarray]]:
    """Job: ``{"input": (N, F0), layer: (N, F), ...}`` pooled by :func:`pool_features`, in
    forward order (``layers`` default: every layer :func:`discover_layers` finds). One unit
    of work per batch."""
    model = snapshot(model)
    x = _as_input(x, _device(model))
    return _features(model, x, _layer_names(model, x, layers), max_features, batch_size, seed)


def layer_features(model: nn.Module, x: torch.Tensor | np.ndarray, layers: Sequence[str] | None = None,
                   max_features: int = DEFAULT_MAX_FEATURES, batch_size: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Each layer's pooled features of ``x`` (see :func:`layer_features_job`)."""
    return run_job(layer_features_job(model, x, layers, max_features, batch_size, seed))


def probe_positions(labels: np.ndarray | torch.Tensor, seed: int = 0) -> np.ndarray | None:
    """For labels with one class per token (N, T): one position per sequence, drawn with a
    seeded generator (the same at every call), so each row of a per-token analysis comes from
    a different sequence (no sequence is on both sides of a probe's split). None for one label
    per sample."""
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim < 2:
        return None
    return np.random.default_rng(seed).integers(0, y.shape[1], size=y.shape[0])


def row_labels(labels: np.ndarray | torch.Tensor, positions: np.ndarray | None) -> np.ndarray:
    """The class of each analysis row: the sample's label, or the label at the row's position."""
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if positions is None:
        return _as_labels(y)
    return y[np.arange(len(positions)), positions].astype(np.int64)


def token_features(ids: torch.Tensor, vocab: int, positions: torch.Tensor | None, max_features: int,
                   seed: int) -> torch.Tensor:
    """Token ids (N, T) as features: the one-hot token at each row's position (N, vocab), or,
    with one label per sequence, every position's one-hot token side by side (N, T * vocab,
    projected like any wide layer): the raw input, as pixels are for images."""
    onehot = F.one_hot(ids.long().clamp(0, vocab - 1), vocab).float()
    if positions is not None:
        return onehot[torch.arange(len(ids), device=ids.device), positions]
    return pool_features(onehot.reshape(len(ids), -1), max_features, seed)


def sequence_features(a: torch.Tensor, positions: torch.Tensor | None, length: int, max_features: int,
                      seed: int) -> torch.Tensor:
    """A layer's output on ``length``-token sequences as row features. Per-position outputs (N, T, D):
    the vector at each row's position (per-token labels), or the mean over positions beside the
    last position (one label per sequence: what a pooling model and a recurrent one read).
    Anything else: :func:`pool_features`."""
    a = a.detach().float()
    if a.dim() == 3 and positions is not None and a.shape[1] == length:
        a = a[torch.arange(a.shape[0], device=a.device), positions]
    elif a.dim() == 3:
        a = torch.cat([a.mean(1), a[:, -1]], 1)
    return pool_features(a, max_features, seed)


def _features(model: nn.Module, x: torch.Tensor, layers: list[str], max_features: int, batch_size: int, seed: int,
              offset: int = 0, total: int | None = None,
              positions: np.ndarray | None = None) -> Job[dict[str, np.ndarray]]:
    """Rows of features per layer: one per sample, or for per-token labels one per (sample,
    its ``positions`` entry). Token-id inputs go through :func:`token_features` and
    :func:`sequence_features`; images and vectors through :func:`pool_features`."""
    chunks = _batches(len(x), batch_size)
    total = total or len(chunks)
    tokens = not x.is_floating_point() and x.dim() == 2
    vocab = int(x.max()) + 1 if tokens and len(x) else 0
    where = torch.as_tensor(positions, dtype=torch.long, device=x.device) if positions is not None else None
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in [INPUT, *layers]}
    with _eval(model), torch.no_grad():
        for i, sl in enumerate(chunks):
            xb = x[sl]
            pb = where[sl] if where is not None else None
            outs = _record(model, xb, layers)
            if tokens:
                parts[INPUT].append(token_features(xb, vocab, pb, max_features, seed).cpu())
            else:
                parts[INPUT].append(pool_features(xb, max_features, seed).cpu())
            for name in layers:
                out = outs[name]
                if out.dim() == 0 or out.shape[0] != len(xb):  # shared by every sample (a position table): no features
                    f = torch.zeros(len(xb), 0)
                elif tokens:
                    f = sequence_features(out, pb, xb.shape[1], max_features, seed)
                else:
                    f = pool_features(out, max_features, seed)
                parts[name].append(f.cpu())
            del outs
            yield Progress(offset + i + 1, total, f"features: {sl.stop}/{len(x)} samples")
    return {name: torch.cat(p).numpy() for name, p in parts.items()}


# --------------------------------------------------------------------------- linear probes
@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread for the fits: these problems are small, and on a busy machine
    the threads' spin-waits make a fit some 30 times slower (measured: 1.1 s against 0.04 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def linear_probe_accuracy(
    features: np.ndarray,
    labels: np.ndarray | Sequence[int],
    folds: int = 5,
    C: float = 0.1,
    max_iter: int = 300,
    seed: int = 0,
) -> float:
    """Mean held-out accuracy of a logistic regression on ``features`` (N, F).

    Stratified ``folds``-fold cross-validation: each fold is scored by a classifier fitted
    on the other folds only (features standardised with the training folds' statistics),
    so no sample is scored by a model that saw it. ``folds`` is lowered to the size of the
    smallest class when needed (at least 2 per class are required).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xf = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = _as_labels(labels)
    if len(xf) != len(y):
        raise ValueError(f"{len(xf)} feature rows but {len(y)} labels")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("a probe needs at least two classes")
    k = min(int(folds), int(counts.min()))
    if k < 2:
        raise ValueError(f"every class needs at least 2 samples for a held-out score (smallest has {counts.min()})")
    if xf.shape[1] == 0:
        return float(counts.max() / counts.sum())
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = []
    with warnings.catch_warnings(), np.errstate(all="ignore"), _one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in split.split(xf, y):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
            clf.fit(xf[train], y[train])
            scores.append(clf.score(xf[test], y[test]))
    return float(np.mean(scores))


def layer_probes_job(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    layers: Sequence[str] | None = None,
    folds: int = 5,
    max_features: int = DEFAULT_MAX_FEATURES,
    C: float = 0.1,
    batch_size: int = 256,
    seed: int = 0,
) -> Job[dict[str, float]]:
    """Job: held-out linear-probe accuracy of every layer on the probe set (x, y), as
    ``{"input": acc, layer: acc, ...}`` in forward order. Units of work: one per feature
    batch, then one per layer; each progress update carries the accuracies so far."""
    model = snapshot(model)
    x = _as_input(x, _device(model))
    positions = probe_positions(y, seed)
    labels = row_labels(y, positions)
    names = _layer_names(model, x, layers)
    return _probes(model, x, labels, names, folds, max_features, C, batch_size, seed, positions)


def layer_probes(model: nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
                 layers: Sequence[str] | None = None, folds: int = 5, max_features: int = DEFAULT_MAX_FEATURES,
                 C: float = 0.1, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Each layer's held-out probe accuracy (see :func:`layer_probes_job`)."""
    return run_job(layer_probes_job(model, x, y, layers, folds, max_features, C, batch_size, seed))


def _probes(model: nn.Module, x: torch.Tensor, labels: np.ndarray, layers: list[str], folds: int,
            max_features: int, C: float, batch_size: int, seed: int,
            positions: np.ndarray | None = None) -> Job[dict[str, float]]:
    n_batches = len(_batches(len(x), batch_size))
    total = n_batches + len(layers) + 1
    feats = yield from _features(model, x, layers, max_features, batch_size, seed, 0, total, positions)
    keep = np.ones(len(labels), bool)
    if positions is not None:  # per-token targets (a text's rare characters): classes a fold can hold
        classes, counts = np.unique(labels, return_counts=True)
        keep = np.isin(labels, classes[counts >= folds])
    acc: dict[str, float] = {}
    for i, name in enumerate([INPUT, *layers]):
        acc[name] = linear_probe_accuracy(feats[name][keep], labels[keep], folds=folds, C=C, seed=seed)
        yield Progress(n_batches + i + 1, total, f"probe {name}: {acc[name]:.3f}", dict(acc))
    return acc


# --------------------------------------------------------------------------- 2-D projections
@dataclass
class Projection:
    """A layer's representation of the probe set projected on its first two principal axes."""

    points: np.ndarray  # (N, 2) float32
    explained: np.ndarray  # (2,) share of the variance along each axis
    labels: np.ndarray | None = None  # (N,) each point's class, when given (per-token: the label at its position)
    positions: np.ndarray | None = None  # (N,) per-token data: the position each point is taken at


def pca_2d(features: np.ndarray) -> Projection:
    """First two principal components of (N, F) features, signs fixed (the largest loading of
    each axis is positive) so the picture does not flip between refreshes."""
    xf = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    xf = xf - xf.mean(0)
    if xf.shape[1] == 0 or not np.isfinite(xf).all():
        return Projection(np.zeros((len(xf), 2), np.float32), np.zeros(2))
    u, s, vt = np.linalg.svd(xf, full_matrices=False)
    k = min(2, len(s))
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(1)])
    signs[signs == 0] = 1
    pts = np.zeros((len(xf), 2))
    pts[:, :k] = u[:, :k] * s[:k] * signs
    var = (s**2).sum()
    explained = np.zeros(2)
    if var > 0:
        explained[:k] = s[:k] ** 2 / var
    return Projection(pts.astype(np.float32), explained)


def layer_projections_job(model: nn.Module, x: torch.Tensor | np.ndarray, layers: Sequence[str] | None = None,
                          max_features: int = DEFAULT_MAX_FEATURES, batch_size: int = 256,
                          seed: int = 0, y: torch.Tensor | np.ndarray | None = None) -> Job[dict[str, Projection]]:
    """Job: ``{"input": Projection, layer: Projection, ...}`` (PCA of the pooled features).
    With labels ``y`` each projection carries its points' classes; per-token labels (N, T)
    make one point per sequence, at a seeded position (:func:`probe_positions`)."""
    model = snapshot(model)
    x = _as_input(x, _device(model))
    names = _layer_names(model, x, layers)
    positions = probe_positions(y, seed) if y is not None else None
    labels = row_labels(y, positions) if y is not None else None
    return _projections(model, x, names, max_features, batch_size, seed, positions, labels)


def _projections(model: nn.Module, x: torch.Tensor, layers: list[str], max_features: int, batch_size: int,
                 seed: int, positions: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> Job[dict[str, Projection]]:
    n_batches = len(_batches(len(x), batch_size))
    total = n_batches + 1
    feats = yield from _features(model, x, layers, max_features, batch_size, seed, 0, total, positions)
    out = {name: pca_2d(f) for name, f in feats.items()}
    for p in out.values():
        p.labels, p.positions = labels, positions
    yield Progress(total, total, "projections")
    return out


# --------------------------------------------------------------------------- receptive fields
@dataclass(frozen=True)
class ReceptiveField:
    """Where a layer's output position looks in the input, per axis (rows, columns):
    position i covers input pixels [offset + i * jump, offset + i * jump + size)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    offset: tuple[int, int]
    input_size: tuple[int, int]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right), half-open, clamped to the image."""
        (h, w), (jh, jw), (oh, ow), (sh, sw) = self.input_size, self.jump, self.offset, self.size
        top, left = oh + row * jh, ow + col * jw
        return max(0, top), min(h, top + sh), max(0, left), min(w, left + sw)


def _pair(v: object) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[-1])
    return int(v), int(v)  # type: ignore[arg-type]


def receptive_field(model: nn.Module, layer: str, input_shape: Sequence[int]) -> ReceptiveField:
    """The receptive field of ``layer``'s output positions, from the kernel, stride, padding
    and dilation of the conv and pooling leaves the forward pass runs up to its output.

    Only modules that act on the current main-path resolution count, so a ResNet's strided
    1x1 shortcut (which sees the block's input after the main path has already shrunk it)
    is not counted twice (a side branch itself gets the main path's field at that point, an
    upper bound). Adaptive pooling counts as a kernel of in/out size. Dense layers (and
    anything after a flatten) see the whole input.
    """
    return _receptive_field(snapshot(model), layer, input_shape)


def _receptive_field(model: nn.Module, layer: str, input_shape: Sequence[int]) -> ReceptiveField:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"receptive fields need image inputs (C, H, W), got {shape}")
    height, width = shape[1], shape[2]
    named = {m: n for n, m in model.named_modules() if n}  # containers too: a block can be the layer
    calls: list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]] = []

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        t_in, t_out = first_tensor(inputs), first_tensor(output)
        if t_in is not None and t_out is not None:
            calls.append((module, tuple(t_in.shape), tuple(t_out.shape)))

    handles = [m.register_forward_hook(hook) for m in named]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=_device(model)))
    finally:
        for h in handles:
            h.remove()
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    cur = (height, width)
    for module, in_shape, out_shape in calls:
        is_leaf = not any(True for _ in module.children())
        if is_leaf and len(in_shape) == 4 and len(out_shape) == 4 and in_shape[2:] == cur:
            geometry = _geometry(module, in_shape[2:], out_shape[2:])
            if geometry is not None:
                for ax, (k, s, p, d) in enumerate(geometry):
                    offset[ax] -= p * jump[ax]
                    size[ax] += (k - 1) * d * jump[ax]
                    jump[ax] *= s
                cur = out_shape[2:]
        if named[module] == layer:
            if len(out_shape) != 4:
                return ReceptiveField((height, width), (height, width), (0, 0), (height, width))
            return ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (offset[0], offset[1]), (height, width))
    raise ValueError(f"layer {layer!r} is not a module reached by the forward pass")


def _geometry(module: nn.Module, in_hw: tuple[int, ...], out_hw: tuple[int, ...]) -> list[tuple[int, int, int, int]] | None:
    """Per axis (kernel, stride, padding, dilation), or None for modules that keep positions."""
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return [(math.ceil(i / o), i // o, 0, 1) for i, o in zip(in_hw, out_hw)]
    if not hasattr(module, "kernel_size") or not hasattr(module, "stride"):
        return None
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    d = _pair(getattr(module, "dilation", 1))
    pad = getattr(module, "padding", 0)
    if pad == "same":
        p = tuple((kk - 1) * dd // 2 for kk, dd in zip(k, d))
    elif pad == "valid":
        p = (0, 0)
    else:
        p = _pair(pad)
    return [(k[a], s[a], p[a], d[a]) for a in range(2)]


# --------------------------------------------------------------------------- top examples
@dataclass
class TopExamples:
    """The inputs of a pool that drive one unit or channel hardest."""

    layer: str
    channel: int
    indices: np.ndarray  # (k,) into the pool, strongest first
    values: np.ndarray  # (k,) the score: the channel's max over positions (a dense unit's value)
    positions: np.ndarray  # (k, 2) (row, col) of that max in the layer's map; (0, 0) for dense units
    boxes: np.ndarray  # (k, 4) (top, bottom, left, right) receptive field in input pixels, half-open
    crops: np.ndarray | None  # (k, crop, crop, C) float32 in [0, 1]; None for non-image inputs
    images: np.ndarray | None = None  # (k, H, W, C) float32 in [0, 1], the whole inputs; None for non-image inputs
    tokens: np.ndarray | None = None  # (k, T) token sequences: each example's token ids
    trace: np.ndarray | None = None  # (k, T) token sequences: the unit's value at every position (peak: positions[:, 1])


def _unit_map(out: torch.Tensor, channel: int) -> torch.Tensor:
    """One channel of a layer output, as (N, positions...): (N, H, W), (N, T) or (N,)."""
    if not 0 <= channel < (out.shape[1] if out.dim() != 3 else out.shape[2]):
        raise ValueError(f"channel {channel} out of range for a layer output of shape {tuple(out.shape[1:])}")
    if out.dim() == 4:
        return out[:, channel]
    if out.dim() == 3:
        return out[:, :, channel]
    return out.reshape(out.shape[0], -1)[:, channel]


def top_examples_job(
    model: nn.Module,
    pool_x: torch.Tensor | np.ndarray,
    layer: str,
    channel: int,
    k: int = 9,
    batch_size: int = 256,
    crop_size: int = 48,
) -> Job[TopExamples]:
    """Job: the ``k`` inputs of ``pool_x`` with the highest max-over-positions activation of
    ``channel`` in ``layer``, each cropped to the receptive field around its argmax (clamped
    to the image) and scaled up to crop_size x crop_size (nearest neighbour, so pixels stay
    visible). One unit of work per batch of the pool, then one for the crops."""
    model = snapshot(model)
    x = _as_input(pool_x, _device(model))
    return _top_examples(model, x, layer, int(channel), int(k), batch_size, crop_size)


def top_examples(model: nn.Module, pool_x: torch.Tensor | np.ndarray, layer: str, channel: int, k: int = 9,
                 batch_size: int = 256, crop_size: int = 48) -> TopExamples:
    """See :func:`top_examples_job`."""
    return run_job(top_examples_job(model, pool_x, layer, channel, k, batch_size, crop_size))


def _top_examples(model: nn.Module, x: torch.Tensor, layer: str, channel: int, k: int, batch_size: int,
                  crop_size: int) -> Job[TopExamples]:
    chunks = _batches(len(x), batch_size)
    total = len(chunks) + 1
    scores, where, traces = [], [], []
    tokens = not x.is_floating_point() and x.dim() == 2
    with _eval(model), torch.no_grad():
        for i, sl in enumerate(chunks):
            m = _unit_map(_record(model, x[sl], [layer])[layer], channel).float()
            flat = m.reshape(m.shape[0], -1)
            val, pos = flat.max(1)
            scores.append(val.cpu())
            if m.dim() == 3:
                where.append(torch.stack([pos // m.shape[2], pos % m.shape[2]], 1).cpu())
            elif m.dim() == 2:  # a sequence: (0, the token position of the peak)
                where.append(torch.stack([torch.zeros_like(pos), pos], 1).cpu())
                traces.append(m.cpu())
            else:
                where.append(torch.zeros((m.shape[0], 2), dtype=torch.long))
            yield Progress(i + 1, total, f"scanning: {sl.stop}/{len(x)} inputs")
    score = torch.cat(scores)
    positions = torch.cat(where)
    k = min(k, len(score))
    values, idx = torch.topk(score, k)  # ties: the lower index first is not guaranteed; values are exact
    positions = positions[idx]
    seq_tokens = x[idx.to(x.device)].cpu().numpy().astype(np.int64) if tokens else None
    trace = torch.cat(traces)[idx].numpy().astype(np.float32) if traces and tokens else None
    boxes = np.zeros((k, 4), dtype=np.int64)
    crops = full = None
    if x.dim() == 4:
        full = x[idx.to(x.device)].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        rf = _receptive_field(model, layer, tuple(x.shape[1:]))
        images = []
        for j in range(k):
            t, b, l, r = rf.box(int(positions[j, 0]), int(positions[j, 1]))
            boxes[j] = (t, b, l, r)
            crop = x[int(idx[j]), :, t:b, l:r].float()[None]
            images.append(F.interpolate(crop, size=(crop_size, crop_size), mode="nearest")[0])
        crops = torch.stack(images).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() if images else \
            np.zeros((0, crop_size, crop_size, x.shape[1]), np.float32)
    yield Progress(total, total, "crops")
    return TopExamples(layer, channel, idx.numpy().astype(np.int64), values.numpy().astype(np.float32),
                       positions.numpy().astype(np.int64), boxes, crops, full, seq_tokens, trace)


# --------------------------------------------------------------------------- activation maximisation
@dataclass
class FeatureVisualisation:
    """An input synthesised to drive one channel (or unit), and how the drive grew."""

    layer: str
    channel: int
    image: np.ndarray  # (H, W, C) float32 in [0, 1]
    trace: np.ndarray  # (steps,) the objective at each step (on the jittered input)
    activation: float  # the objective on the final image, unjittered


def channel_objective(out: torch.Tensor, channel: int) -> torch.Tensor:
    """Per-sample mean activation of ``channel``: the mean over positions of a feature map or
    sequence, the unit's value for a dense layer."""
    m = _unit_map(out, channel)
    return m.reshape(m.shape[0], -1).mean(1)


def _frequencies(h: int, w: int, device: torch.device) -> torch.Tensor:
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    return torch.sqrt(fy * fy + fx * fx)  # cycles per pixel, (h, w // 2 + 1)


@contextlib.contextmanager
def _leaky_relu_gradients(model: nn.Module, slope: float = 0.01) -> Iterator[None]:
    """ReLUs of ``model`` pass ``slope`` times the gradient where they are off; their values
    are unchanged. Starting from a flat grey image, a channel that is off everywhere would
    otherwise get no gradient at all and never move. Only for the analysis copy."""

    def hook(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        neg = inputs[0].clamp(max=0)
        return out + slope * (neg - neg.detach())

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the hook needs the input as it was (this is the copy)
                handles.append(m.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def activation_maximisation_job(
    model: nn.Module,
    layer: str,
    channel: int,
    input_shape: Sequence[int],
    steps: int = 128,
    lr: float = 0.1,
    jitter: int = 2,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    decay: float = 1.0,
    seed: int = 0,
) -> Job[FeatureVisualisation]:
    """Job: optimise an image (C, H, W) from faint noise to maximise ``channel``'s mean
    activation in ``layer``. One unit of work per step; progress data is the objective.

    Regularisers (Olah et al. 2017, Yosinski et al. 2015):

    - parameterisation: the image is ``sigmoid(irfft2(spectrum * 1/f**decay))``: optimising
      a spectrum scaled by 1/frequency decorrelates the pixels (low frequencies move
      first), and the sigmoid keeps pixels inside the data range [0, 1];
    - jitter: each step sees the image rolled by up to ``jitter`` pixels each way;
    - blur: every ``blur_every`` steps the image is blurred by a Gaussian of ``blur_sigma``
      pixels (a multiplication of the spectrum, so it stays in the parameterisation);
    - ReLUs let a small gradient through where they are off (values unchanged), so a
      channel silent on the grey start image can still be found.

    Gradients are taken with ``torch.autograd.grad`` with respect to the spectrum only.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"activation maximisation needs image inputs (C, H, W), got {shape}")
    model = snapshot(model)
    return _maximise(model, layer, int(channel), shape, steps, lr, jitter, blur_every, blur_sigma, decay, seed)


def activation_maximisation(model: nn.Module, layer: str, channel: int, input_shape: Sequence[int],
                            steps: int = 128, lr: float = 0.1, jitter: int = 2, blur_every: int = 4,
                            blur_sigma: float = 0.5, decay: float = 1.0, seed: int = 0) -> FeatureVisualisation:
    """See :func:`activation_maximisation_job`."""
    return run_job(activation_maximisation_job(model, layer, channel, input_shape, steps, lr, jitter,
                                               blur_every, blur_sigma, decay, seed))


def _maximise(model: nn.Module, layer: str, channel: int, shape: tuple[int, int, int], steps: int, lr: float,
              jitter: int, blur_every: int, blur_sigma: float, decay: float, seed: int,
              offset: int = 0, total: int | None = None) -> Job[FeatureVisualisation]:
    c, h, w = shape
    device = _device(model)
    total = total or steps
    gen = torch.Generator().manual_seed(seed)
    freqs = _frequencies(h, w, device)
    scale = 1.0 / freqs.clamp(min=1.0 / max(h, w)) ** decay
    scale = scale / scale.max() * math.sqrt(h * w) / 4  # the lowest frequency moves a few units per step
    blur = torch.exp(-2 * math.pi**2 * blur_sigma**2 * freqs * freqs)
    spectrum = (torch.randn((1, c, *freqs.shape, 2), generator=gen) * 0.01).to(device).requires_grad_(True)
    opt = torch.optim.Adam([spectrum], lr=lr)

    def render(z: torch.Tensor) -> torch.Tensor:
        pre = torch.fft.irfft2(torch.view_as_complex(z) * scale, s=(h, w), norm="ortho")
        return torch.sigmoid(pre)

    trace = np.zeros(steps, dtype=np.float32)
    with _eval(model), _leaky_relu_gradients(model):
        for step in range(steps):
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen)) if jitter else (0, 0)
            with torch.enable_grad():
                image = render(spectrum)
                shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
                objective = channel_objective(_record(model, shifted, [layer], grad=True)[layer], channel).sum()
                (grad,) = torch.autograd.grad(objective, [spectrum])
            spectrum.grad = -grad  # ascend
            opt.step()
            if blur_every and (step + 1) % blur_every == 0:
                with torch.no_grad():
                    spectrum.mul_(blur[None, None, :, :, None])
            trace[step] = float(objective.detach())
            yield Progress(offset + step + 1, total, f"step {step + 1}/{steps}: activation {trace[step]:.3f}",
                           trace[step].item())
        with torch.no_grad():
            image = render(spectrum)
            final = float(channel_objective(_record(model, image, [layer])[layer], channel).sum())
    return FeatureVisualisation(layer, channel, image[0].permute(1, 2, 0).cpu().numpy().astype(np.float32),
                                trace, final)


def layer_gallery_job(model: nn.Module, layers: Sequence[str], input_shape: Sequence[int], channels: int = 4,
                      steps: int = 64, seed: int = 0, **options: float) -> Job[dict[str, list[FeatureVisualisation]]]:
    """Job: activation maximisation of the first ``channels`` channels of each of ``layers``
    (e.g. every conv layer), to set early simple patterns beside late complex ones. One unit
    of work per optimisation step; ``options`` go to the optimiser (lr, jitter, blur...)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"a layer gallery needs image inputs (C, H, W), got {shape}")
    model = snapshot(model)
    x = torch.zeros((1, *shape), device=_device(model))
    with torch.no_grad():
        outs = _record(model, x, list(layers))
    plan = [(name, ch) for name in layers
            for ch in range(min(channels, outs[name].shape[2] if outs[name].dim() == 3 else outs[name].shape[1]))]
    return _gallery(model, plan, shape, steps, seed, options)


def _gallery(model: nn.Module, plan: list[tuple[str, int]], shape: tuple[int, int, int], steps: int, seed: int,
             options: dict[str, float]) -> Job[dict[str, list[FeatureVisualisation]]]:
    o = {"lr": 0.1, "jitter": 2, "blur_every": 4, "blur_sigma": 0.5, "decay": 1.0, **options}
    out: dict[str, list[FeatureVisualisation]] = {}
    for i, (name, ch) in enumerate(plan):
        vis = yield from _maximise(model, name, ch, shape, steps, float(o["lr"]), int(o["jitter"]),
                                   int(o["blur_every"]), float(o["blur_sigma"]), float(o["decay"]), seed,
                                   i * steps, len(plan) * steps)
        out.setdefault(name, []).append(vis)
    return out


# --------------------------------------------------------------------------- class selectivity
@dataclass
class Selectivity:
    """Per unit (or channel): how much more it fires for one class than for the others."""

    index: np.ndarray  # (U,) in [0, 1]
    preferred: np.ndarray  # (U,) the class with the highest mean activation
    class_means: np.ndarray  # (K, U) mean activation per class present (rows follow ``classes``)
    classes: np.ndarray  # (K,) the class labels of the rows


def selectivity_index(class_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class selectivity (Morcos et al. 2018) of every unit from its (K, U) class means:

        SI = (mu_max - mu_rest) / (mu_max + mu_rest)

    with mu_max the mean activation for the unit's preferred class and mu_rest the mean of
    the other classes' means. 0: the unit fires alike for all classes; 1: only for one.
    The formula assumes activations >= 0 (post-ReLU); where a unit has a negative class mean
    (pre-activation layers, tanh) its means are first shifted so the smallest is 0. A unit
    whose class means are all equal (a dead unit) scores 0. Returns (index, preferred class
    row).
    """
    m = np.asarray(class_means, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"class means must be (classes >= 2, units), got shape {m.shape}")
    m = m - np.minimum(m.min(0, keepdims=True), 0.0)
    preferred = m.argmax(0)
    mu_max = m.max(0)
    mu_rest = (m.sum(0) - mu_max) / (m.shape[0] - 1)
    denom = mu_max + mu_rest
    tiny = 1e-12 * max(1.0, float(np.abs(m).max(initial=0.0)))
    index = np.where(denom > tiny, (mu_max - mu_rest) / np.where(denom > tiny, denom, 1.0), 0.0)
    return index.astype(np.float32), preferred.astype(np.int64)


def unit_activations(out: torch.Tensor) -> torch.Tensor:
    """(N, U) one value per unit: a channel's mean over positions, a sequence feature's mean
    over tokens, a dense unit's value."""
    if out.dim() == 4:
        return out.mean((2, 3))
    if out.dim() == 3:
        return out.mean(1)
    return out.reshape(out.shape[0], -1)


def class_selectivity_job(model: nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, layer: str,
                          batch_size: int = 256) -> Job[Selectivity]:
    """Job: :class:`Selectivity` of every unit of ``layer`` on the probe set (x, y). One unit
    of work per batch."""
    model = snapshot(model)
    x = _as_input(x, _device(model))
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return _selectivity(model, x, y.astype(np.int64) if y.ndim == 2 else _as_labels(y), layer, batch_size)


def class_selectivity(model: nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, layer: str,
                      batch_size: int = 256) -> Selectivity:
    """See :func:`class_selectivity_job` and :func:`selectivity_index`."""
    return run_job(class_selectivity_job(model, x, y, layer, batch_size))


def _selectivity(model: nn.Module, x: torch.Tensor, labels: np.ndarray, layer: str, batch_size: int) -> Job[Selectivity]:
    """Class means of every unit. Labels per token (N, T) count every (sample, position) of a
    per-position output as one row, at its own label; labels per sample average over positions."""
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} inputs but {len(labels)} labels")
    per_token = labels.ndim == 2
    classes = np.unique(labels)
    chunks = _batches(len(x), batch_size)
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    with _eval(model), torch.no_grad():
        for i, sl in enumerate(chunks):
            out = _record(model, x[sl], [layer])[layer]
            rows = labels[sl]
            if per_token and out.dim() == 3 and out.shape[1] == rows.shape[1]:
                acts, rows = out.reshape(-1, out.shape[2]).double().cpu(), rows.reshape(-1)
            else:
                acts = unit_activations(out).double().cpu()
                rows = rows if not per_token else rows[:, -1]  # a per-sequence output: the last position's class
            onehot = torch.from_numpy((rows[:, None] == classes[None, :]).astype(np.float64))
            part, seen = onehot.T @ acts, onehot.sum(0)  # (K, U), (K,)
            sums, counts = (part, seen) if sums is None else (sums + part, counts + seen)
            yield Progress(i + 1, len(chunks), f"selectivity: {sl.stop}/{len(x)} inputs")
    assert sums is not None and counts is not None
    present = counts > 0
    classes, sums, counts = classes[present.numpy()], sums[present], counts[present]
    means = (sums / counts[:, None]).numpy()
    index, row = selectivity_index(means)
    return Selectivity(index, classes[row], means.astype(np.float32), classes)
