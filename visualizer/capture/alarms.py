"""Alarms on layers, computed from what a frame already carries (no extra device work).

Each alarm is a plain dict, ``{"kind", "since", "value", "text"}``, so it crosses the process
boundary as it is and the UI needs nothing from here. ``since`` is the step of the first
frame of an unbroken run of frames in which the condition held.

Conditions (thresholds below, documented in the README):

- ``vanishing``: a layer's gradient RMS (parameter-gradient norm / sqrt(parameters)) is below
  ``VANISHING_RATIO`` times the largest gradient RMS of any layer in the same frame: this
  layer learns more than a thousand times slower than the fastest one.
- ``exploding``: a layer's parameter-gradient norm exceeds ``EXPLODING_RATIO`` times its weight
  norm, so one SGD step at a learning rate of 0.1 or more would change it by more than its
  own size; or a gradient that is not finite.
- ``dead``: a ReLU layer with more than ``DEAD_FRACTION`` of its units (channels) never
  positive on any input of the last validation pass (on the probe batch before the first).
- ``saturated``: a sigmoid or tanh layer with more than ``SATURATED_FRACTION`` of its unit
  outputs on the probe batch within ``SATURATION_MARGIN`` of the bounds (sigmoid: below 0.02
  or above 0.98; tanh: beyond ±0.96), where the derivative is under about 0.02 (sigmoid) /
  0.08 (tanh).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from visualizer.stream.frames import LayerActivation, LayerGradient, LayerInfo

VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 10.0
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5
SATURATION_MARGIN = 0.02  # of the output range
RELU_KINDS = ("ReLU", "ReLU6")
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardsigmoid": (0.0, 1.0), "Hardtanh": (-1.0, 1.0)}
KINDS = ("vanishing", "exploding", "dead", "saturated")
TITLES = {"vanishing": "vanishing gradient", "exploding": "exploding gradient", "dead": "dead ReLUs",
          "saturated": "saturated units"}


def saturated_fraction(a: LayerActivation, kind: str) -> float:
    """Share of (sample, unit) outputs within the saturation margin of ``kind``'s bounds."""
    lo, hi = SATURATING[kind]
    margin = SATURATION_MARGIN * (hi - lo)
    values = np.asarray(a.channel_mean, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    return float(np.mean((values <= lo + margin) | (values >= hi - margin)))


def layer_conditions(layers: Sequence[LayerInfo], activations: Mapping[str, LayerActivation],
                     gradients: Mapping[str, LayerGradient]) -> dict[str, dict[str, tuple[float, str]]]:
    """{layer: {kind: (value, text)}} for every alarm condition that holds in one frame."""
    found: dict[str, dict[str, tuple[float, str]]] = {}
    sizes = {l.name: max(1, l.num_params) for l in layers}
    rms = {n: g.grad_norm / np.sqrt(sizes.get(n, 1)) for n, g in gradients.items()}
    finite = [v for v in rms.values() if np.isfinite(v)]
    top = max(finite) if finite else 0.0
    for name, g in gradients.items():
        r = rms[name]
        if not np.isfinite(g.grad_norm):
            found.setdefault(name, {})["exploding"] = (float("inf"), "gradient is not finite")
        elif g.grad_norm > EXPLODING_RATIO * max(g.weight_norm, 1e-12):
            ratio = g.grad_norm / max(g.weight_norm, 1e-12)
            found.setdefault(name, {})["exploding"] = (
                ratio, f"gradient norm {ratio:.3g}× the weight norm (alarm above {EXPLODING_RATIO:g}×)")
        elif len(finite) > 1 and top > 0 and r < VANISHING_RATIO * top:
            found.setdefault(name, {})["vanishing"] = (
                r / top, f"gradient RMS {r:.2g}, {r / top:.1e} of the largest layer's (alarm below {VANISHING_RATIO:g})")
    kinds = {l.name: l.kind for l in layers}
    for name, a in activations.items():
        kind = kinds.get(name, "")
        if kind in RELU_KINDS and a.dead_fraction > DEAD_FRACTION:
            found.setdefault(name, {})["dead"] = (
                a.dead_fraction, f"{100 * a.dead_fraction:.0f} % of units never active on any of {a.dead_basis} "
                                 f"(alarm above {100 * DEAD_FRACTION:.0f} %)")
        elif kind in SATURATING:
            share = saturated_fraction(a, kind)
            if share > SATURATED_FRACTION:
                found.setdefault(name, {})["saturated"] = (
                    share, f"{100 * share:.0f} % of outputs at the flat ends of the {kind.lower()} "
                           f"(alarm above {100 * SATURATED_FRACTION:.0f} %)")
    return found


class AlarmTracker:
    """Turns per-frame conditions into alarms that remember the step they began."""

    def __init__(self, layers: Sequence[LayerInfo]) -> None:
        self.layers = list(layers)
        self._active: dict[tuple[str, str], dict[str, Any]] = {}

    def clear(self) -> None:
        self._active = {}

    def update(self, step: int, activations: Mapping[str, LayerActivation],
               gradients: Mapping[str, LayerGradient]) -> dict[str, list[dict[str, Any]]]:
        """Fold in one frame; returns the active alarms, {layer: [alarm, ...]} in forward order.

        Gradient alarms are only re-judged on frames that carry gradients (training steps);
        activation alarms on frames that carry activations.
        """
        now = layer_conditions(self.layers, activations, gradients)
        judged = set()
        if gradients:
            judged |= {"vanishing", "exploding"}
        if activations:
            judged |= {"dead", "saturated"}
        for key in list(self._active):
            layer, kind = key
            if kind in judged and kind not in now.get(layer, {}):
                del self._active[key]
        for layer, conds in now.items():
            for kind, (value, text) in conds.items():
                alarm = self._active.get((layer, kind))
                since = alarm["since"] if alarm else step
                self._active[(layer, kind)] = {"kind": kind, "since": since, "value": float(value), "text": text}
        out: dict[str, list[dict[str, Any]]] = {}
        for l in self.layers:
            alarms = [self._active[(l.name, k)] for k in KINDS if (l.name, k) in self._active]
            if alarms:
                out[l.name] = alarms
        return out
