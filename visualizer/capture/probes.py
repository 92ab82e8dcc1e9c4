"""Probes: attach to a model from outside, record one pass, reduce on the device.

Every probe removes its hooks in ``finally``. None of them changes what it watches:
the activation probe runs in eval mode on a fixed probe batch and restores the
random-number state and the train/eval mode afterwards.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visualizer.capture.layers import first_tensor, out_of_place
from visualizer.engine.trainer import token_loss


@contextlib.contextmanager
def preserved_state(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode and forked random-number state for the duration; both restored after."""
    was_training = model.training  # nested uses find eval mode and skip the walk over every module
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if was_training:
            model.eval()
        try:
            yield
        finally:
            if was_training:
                model.train()


def record_outputs(
    model: nn.Module, x: torch.Tensor | dict[str, torch.Tensor], layers: Sequence[str], grad: bool = False
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model(x)`` and return (output, {layer: its output tensor}).

    The caller picks the mode and grad state; hooks are removed even if the forward raises.
    A kept output is the layer's own, not what later code wrote over it: in-place modules run
    out of place meanwhile (:func:`out_of_place`), and if the model's own ``forward`` edits an
    output in place (``x.relu_()``, ``x += y``: its version counter moved), the pass runs once
    more with that layer handing on a copy, which the edit then lands on.
    """
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise KeyError(f"no such layer(s) in the model: {', '.join(missing)}")
    out, outputs, versions = _recorded_pass(model, modules, x, layers, grad, copied=set())
    edited = {n for n, t in outputs.items() if t._version != versions[n]}
    if edited:
        out, outputs, _ = _recorded_pass(model, modules, x, layers, grad, copied=edited)
    return first_tensor(out), outputs


def _recorded_pass(
    model: nn.Module,
    modules: dict[str, nn.Module],
    x: torch.Tensor | dict[str, torch.Tensor],
    layers: Sequence[str],
    grad: bool,
    copied: set[str],
) -> tuple[object, dict[str, torch.Tensor], dict[str, int]]:
    """One forward pass with output hooks: (model output, {layer: output}, {layer: its version
    then}); the layers in ``copied`` pass a copy of their (single tensor) output on."""
    outputs: dict[str, torch.Tensor] = {}
    versions: dict[str, int] = {}

    def make_hook(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> torch.Tensor | None:
            t = first_tensor(out)
            if t is None or name in outputs:
                return None
            outputs[name], versions[name] = t, t._version
            return t.clone() if name in copied and out is t else None
        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in layers]
    try:
        with torch.set_grad_enabled(grad), out_of_place(modules.values()):
            out = model(**x) if isinstance(x, dict) else model(x)  # a dict: keyword inputs (token ids, mask)
    finally:
        for h in handles:
            h.remove()
    return out, outputs, versions


def unit_peaks(t: torch.Tensor) -> torch.Tensor:
    """Each channel's (or unit's) largest value over a batch (N, ...): over inputs and positions
    for feature maps (N, C, H, W) and sequences (N, T, D), over inputs for anything else."""
    t = t.detach()
    if t.dim() == 4:
        return t.amax((0, 2, 3))
    if t.dim() == 3:
        return t.amax((0, 1))
    return t.reshape(t.shape[0], -1).amax(0)


class AliveUnits:
    """Which channels/units of ``layers`` are positive on at least one input, over every forward
    pass made while it is entered (forward hooks): the share of dead units judged on many inputs
    (the validation pass's), where the probe batch's few samples overstate it (a unit that fires on
    one image in twenty looks dead on sixteen)."""

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        self.modules = {n: modules[n] for n in layers if n in modules}
        self.alive: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> AliveUnits:
        def make_hook(name: str):
            def hook(_m: nn.Module, _i: object, out: object) -> None:
                t = first_tensor(out)
                if t is None or t.dim() == 0 or t.numel() == 0 or not t.is_floating_point():
                    return
                fired = unit_peaks(t) > 0
                seen = self.alive.get(name)
                self.alive[name] = fired if seen is None or seen.shape != fired.shape else seen | fired
            return hook

        self._handles = [m.register_forward_hook(make_hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def dead_fractions(self) -> dict[str, torch.Tensor]:
        """{layer: share of its channels/units never positive} (device scalars), for the layers that ran."""
        return {n: 1.0 - a.float().mean() for n, a in self.alive.items()}


def capture_activations(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Full-resolution outputs of ``layers`` for ``x`` (eval mode, no grad, state restored)."""
    device = x.device
    with preserved_state(model, device):
        _, outs = record_outputs(model, x, layers)
    return {k: v.detach() for k, v in outs.items()}


def rms(t: torch.Tensor) -> torch.Tensor:
    """Root mean square of every element, in one pass (0 for an empty tensor)."""
    return torch.linalg.vector_norm(t) / math.sqrt(max(1, t.numel()))


def histogram(t: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """Counts of ``t`` in ``bins`` equal bins over [lo, hi] (float, on ``t``'s device). Values
    outside the range count in the end bins, NaN in the bin of 0 clamped into range.

    ``torch.histc`` walks the CPU several times slower than computing each bin index and
    adding ones at them, and ``scatter_add_`` needs no host read on a GPU (``bincount`` does).
    """
    scale = bins / (hi - lo)
    x = torch.nan_to_num(t.detach().float().reshape(-1))  # a new tensor: the in-place steps below are safe
    idx = x.clamp_(lo, hi).sub_(lo).mul_(scale).long().clamp_(0, bins - 1)
    return torch.zeros(bins, device=t.device).scatter_add_(0, idx, torch.ones(idx.shape, device=t.device))


def reduce_activation(a: torch.Tensor, max_channels: int, map_size: int, max_units: int) -> dict[str, torch.Tensor]:
    """Display-sized summary of one layer's output (P, ...) on the device.

    Whole-tensor passes are the cost, so each one is made once: per-channel max and min give
    which channels ever fire (max > 0) and whether every value is finite (max and min
    propagate NaN, and an infinity is the max or the min), without a boolean pass each.
    """
    a = a.detach().float()
    if a.dim() == 4:  # (P, C, H, W) feature maps
        maps = a[:, :max_channels]
        h, w = maps.shape[-2:]
        if h > map_size or w > map_size:
            maps = F.adaptive_avg_pool2d(maps, (min(h, map_size), min(w, map_size)))
        dims: tuple[int, ...] = (2, 3)
    elif a.dim() == 3:  # (P, T, D) sequences: tokens by features
        maps = a[:, :max_units, :max_units]
        dims = (1,)
    else:
        a = a.reshape(a.shape[0], -1)
        maps = a[:, :max_units]
        dims = ()
    mean, peak, low = (a.mean(dims), a.amax(dims), a.amin(dims)) if dims else (a, a, a)
    return {
        "maps": maps.half(),
        "channel_mean": mean,
        "channel_max": peak,
        "dead_fraction": 1.0 - (peak > 0).any(0).float().mean(),
        "norm": rms(a),
        "finite": torch.isfinite(peak).all() & torch.isfinite(low).all(),  # exact: huge but finite is finite
    }


class ActivationProbe:
    """Records every watched layer on a fixed probe batch, with activation gradients.

    The gradients are d(mean cross-entropy on the probe batch)/d(layer output), taken
    with ``torch.autograd.grad`` so the parameters' ``.grad`` stay untouched.
    """

    def __init__(
        self,
        layers: Sequence[str],
        inputs: torch.Tensor,
        labels: torch.Tensor,
        max_channels: int = 32,
        map_size: int = 16,
        max_units: int = 256,
    ) -> None:
        self.layers = list(layers)
        self.inputs, self.labels = inputs, labels
        self.max_channels, self.map_size, self.max_units = max_channels, map_size, max_units

    def capture(self, model: nn.Module) -> dict[str, Any]:
        """Device tensors: {"layers": {name: summary}, "probs": (P, K), or (P, T, K) per token}."""
        with preserved_state(model, self.inputs.device):
            logits, outs = record_outputs(model, self.inputs, self.layers, grad=True)
            reduced = {
                n: reduce_activation(outs[n], self.max_channels, self.map_size, self.max_units)
                for n in self.layers
                if n in outs
            }
            needs = [n for n in reduced if outs[n].requires_grad]
            if needs:
                loss = token_loss(logits, self.labels)
                grads = torch.autograd.grad(loss, [outs[n] for n in needs], allow_unused=True)
                for n, g in zip(needs, grads):
                    if g is not None:
                        reduced[n]["grad_norm"] = rms(g.detach().float())
            probs = logits.detach().float().softmax(-1)
        return {"layers": reduced, "probs": probs}


class GradientProbe:
    """Per-layer gradient norm, weight norm, update-to-weight ratio and histograms.

    Histogram edges are fixed per layer at the first capture (weights: linear over
    twice the initial range; gradients: log10 |g| from ``grad_range``), so histograms
    from different steps line up as a heat map.
    """

    def __init__(self, layers: Sequence[str], weight_bins: int = 41, grad_bins: int = 40, grad_range: tuple[float, float] = (-10.0, 0.0)) -> None:
        self.layers = list(layers)
        self.weight_bins, self.grad_bins = weight_bins, grad_bins
        self.grad_edges = np.linspace(grad_range[0], grad_range[1], grad_bins + 1)
        self.weight_edges: dict[str, np.ndarray] = {}
        self._before: dict[str, torch.Tensor] = {}
        self._stats: dict[str, dict[str, torch.Tensor]] = {}
        self.seconds = 0.0  # host time the last armed step spent in this probe (its share of a capture's cost)

    @staticmethod
    def _flat(module: nn.Module, grads: bool) -> torch.Tensor:
        parts = []
        for p in module.parameters(recurse=False):
            if not p.requires_grad:
                continue
            t = p.grad if grads else p
            parts.append(torch.zeros_like(p).reshape(-1) if t is None else t.detach().reshape(-1).float())
        return torch.cat(parts) if parts else torch.zeros(0)

    def after_backward(self, model: nn.Module) -> None:
        t0 = time.perf_counter()
        modules = dict(model.named_modules())
        self._before, self._stats = {}, {}
        lo, hi = float(self.grad_edges[0]), float(self.grad_edges[-1])
        for name in self.layers:
            m = modules[name]
            w, g = self._flat(m, grads=False), self._flat(m, grads=True)
            if w.numel() == 0:
                continue
            if name not in self.weight_edges:  # first capture only: one small host read
                peak = float(w.abs().max())
                span = 2.0 * max(peak, 1e-6) if np.isfinite(peak) else 1.0
                self.weight_edges[name] = np.linspace(-span, span, self.weight_bins + 1)
            we = self.weight_edges[name]
            self._before[name] = w.clone()
            self._stats[name] = {
                "grad_norm": g.norm(),
                "weight_norm": w.norm(),
                # non-finite values (a diverged run) land in the end bins
                "weight_hist": histogram(w, float(we[0]), float(we[-1]), self.weight_bins),
                "grad_hist": histogram(torch.log10(g.abs() + 1e-30), lo, hi, self.grad_bins),
            }
        self.seconds = time.perf_counter() - t0

    def after_update(self, model: nn.Module) -> None:
        t0 = time.perf_counter()
        modules = dict(model.named_modules())
        for name, before in self._before.items():
            after = self._flat(modules[name], grads=False)
            self._stats[name]["update_ratio"] = (after - before).norm() / (before.norm() + 1e-12)
        self._before = {}
        self.seconds += time.perf_counter() - t0

    def take(self) -> dict[str, dict[str, torch.Tensor]]:
        """Device tensors of the last armed step, then forget them."""
        stats, self._stats = self._stats, {}
        return stats


def filter_images(model: nn.Module, layers: Sequence[str], input_shape: tuple[int, ...], max_filters: int = 64) -> dict[str, torch.Tensor]:
    """Kernels as images: the first layer's in colour (h, w, 3) when the input is RGB,
    deeper conv kernels averaged over input channels (h, w). A first Linear layer on an
    image input is shown as one image per unit, shaped like the input."""
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    first = True
    for name in layers:
        m = modules[name]
        w = getattr(m, "weight", None)
        if not isinstance(w, torch.Tensor) or not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        w = w.detach().float()[:max_filters]
        if isinstance(m, nn.Conv2d):
            if first and w.shape[1] == 3:
                out[name] = w.permute(0, 2, 3, 1)
            else:
                out[name] = w.mean(1)
        elif first and len(input_shape) == 3 and w.shape[1] == int(np.prod(input_shape)):
            img = w.reshape(w.shape[0], *input_shape)
            out[name] = img.permute(0, 2, 3, 1) if input_shape[0] == 3 else img.mean(1)
        first = False
    return out


def parameter_filters(model: nn.Module, input_shape: tuple[int, ...], max_filters: int = 64) -> dict[str, torch.Tensor]:
    """Kernels as images read from ``named_parameters`` alone, for models whose modules cannot be
    reached (a TorchScript file): every 4-D ``<layer>.weight`` is a conv kernel, the first one in
    colour for RGB inputs, the others averaged over input channels."""
    out: dict[str, torch.Tensor] = {}
    for name, w in model.named_parameters():
        if not name.endswith("weight") or w.dim() != 4:
            continue
        layer = name[: -len(".weight")] if name.endswith(".weight") else name
        w = w.detach().float()[:max_filters]
        rgb = not out and len(input_shape) == 3 and input_shape[0] == 3 and w.shape[1] == 3
        out[layer] = w.permute(0, 2, 3, 1) if rgb else w.mean(1)
    return out


class PlaneProbe:
    """For 2-D inputs: the model's class probabilities and each hidden unit's output over
    a grid covering the data (decision regions, and TensorFlow-Playground-style unit maps).

    The grid's forward pass is most of a small MLP's capture (4,096 points at 64 x 64 cost
    2.4 ms on one CPU core, five steps' worth): 48 x 48 is 0.56 of that. The Plane panel
    shows 8 units per layer: more would only be copied.
    """

    def __init__(self, layers: Sequence[str], points: torch.Tensor, resolution: int = 48, max_units: int = 8, margin: float = 0.15) -> None:
        lo, hi = points.min(0).values, points.max(0).values
        pad = (hi - lo) * margin
        lo, hi = (lo - pad).cpu(), (hi + pad).cpu()
        self.extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        xs = torch.linspace(self.extent[0], self.extent[1], resolution)
        ys = torch.linspace(self.extent[2], self.extent[3], resolution)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # row = y, column = x
        self.grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(points.device, points.dtype)
        self.layers, self.resolution, self.max_units = list(layers), resolution, max_units

    def capture(self, model: nn.Module) -> dict[str, Any]:
        """Device tensors: {"probs": (R, R, K), "units": {layer: (U, R, R)}} (rows are y)."""
        r = self.resolution
        with preserved_state(model, self.grid.device):
            logits, outs = record_outputs(model, self.grid, self.layers)
        units = {}
        for name, a in outs.items():
            if a.dim() == 2:
                units[name] = a[:, : self.max_units].detach().float().T.reshape(-1, r, r)
        return {"probs": logits.detach().float().softmax(-1).reshape(r, r, -1), "units": units}


def weight_movement(model: nn.Module, layers: Sequence[str], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """How far each layer's weights moved from ``reference`` (a state dict, e.g. as loaded):
    ||w - w0|| / ||w0|| over the layer's own parameters, as 0-d tensors on the device."""
    modules = dict(model.named_modules())
    moved: dict[str, torch.Tensor] = {}
    for name in layers:
        diff, base = [], []
        for pname, p in modules[name].named_parameters(recurse=False):
            ref = reference.get(f"{name}.{pname}")
            if ref is not None and ref.shape == p.shape:
                diff.append((p.detach() - ref.to(p.device)).float().pow(2).sum())
                base.append(ref.to(p.device).float().pow(2).sum())
        if diff:
            moved[name] = torch.stack(diff).sum().sqrt() / torch.stack(base).sum().sqrt().clamp_min(1e-12)
    return moved
