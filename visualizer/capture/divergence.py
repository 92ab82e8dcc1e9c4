"""Finding where a run first went non-finite: replay from a snapshot with hooks attached.

Normal steps never look for NaN or infinity: the per-step loss stays on the device and is
read when a frame is captured. When a captured loss is not finite, the session rolls back
to the last good snapshot and replays the steps one by one under a
:class:`NonFiniteWatch`, which records, on the device, whether each watched layer's
output, the gradient of that output, its parameters' gradients and its weights after the
update are finite; the flags are read once per replayed step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from visualizer.capture.layers import first_tensor
from visualizer.engine.snapshots import TrainerSnapshot, restore_snapshot
from visualizer.engine.trainer import Trainer

WHERE_TEXT = {
    "output": "its output",
    "gradient": "the gradient of its output (the backward pass starts there)",
    "weight gradient": "the gradient of its weights",
    "weights": "its weights after the update",
    "loss": "the loss (every layer's output was finite)",
    "probe output": "its output on the probe batch in evaluation mode (the training steps stayed finite: "
                    "look at running statistics such as batch norm's)",
}


@dataclass
class Divergence:
    """Where and when a run first produced a NaN or infinite value.

    ``step`` is the training step (1-based, as in the frames) that produced it; ``layer`` the
    first watched layer in forward order whose ``where`` ("output", "weight gradient",
    "weights"), or the layer where the backward pass first went non-finite ("gradient"),
    or None when the replay did not reproduce it. ``rolled_back_to`` is the step the run
    was put back to.
    """

    step: int
    layer: str | None
    where: str
    value: str  # "NaN" or "inf"
    rolled_back_to: int | None  # None: no good snapshot, the run stays where it is
    reproduced: bool = True

    def message(self) -> str:
        if self.rolled_back_to is None:
            return (f"Training diverged: the loss became NaN or infinite at step {self.step} and there is no "
                    "good snapshot to roll back to. Paused: reset the weights or start a new run with other settings.")
        if self.layer is None and self.where != "loss":
            first = (f"a value became NaN or infinite at or before step {self.step} (the replay from step "
                     f"{self.rolled_back_to} did not reproduce it, so the layer is unknown)")
        elif self.layer is None:
            first = f"at step {self.step} the loss became {self.value} while every layer's output was finite"
        else:
            first = f"the first non-finite value ({self.value}) appeared at step {self.step} in layer {self.layer!r}: {WHERE_TEXT[self.where]}"
        return (f"Training diverged: {first}. Paused and rolled back to step {self.rolled_back_to}, "
                "the last good snapshot. Lower the learning rate (or change other settings) and press Play "
                "to continue from there, or reset the weights.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NonFiniteWatch:
    """Hooks on ``layers`` that flag non-finite outputs, output gradients, weight gradients and
    weights during one step; a :class:`StepObserver` for :meth:`Trainer.step`. Use as a
    context manager: the hooks are removed on exit, whatever happens."""

    def __init__(self, model: nn.Module, layers: Sequence[str], param_layers: Sequence[str]) -> None:
        self.model = model
        self.layers = list(layers)
        self.param_layers = list(param_layers)
        self._modules = dict(model.named_modules())
        self._handles: list[Any] = []
        self.reset()

    def reset(self) -> None:
        self.outputs: dict[str, torch.Tensor] = {}
        self.output_grads: dict[str, torch.Tensor] = {}
        self.weight_grads: dict[str, torch.Tensor] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self._tensor_handles: list[Any] = []

    def __enter__(self) -> NonFiniteWatch:
        for name in self.layers:
            self._handles.append(self._modules[name].register_forward_hook(self._forward_hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles + self._tensor_handles:
            h.remove()
        self._handles, self._tensor_handles = [], []

    def _forward_hook(self, name: str):
        def hook(_m: nn.Module, _inputs: object, output: object) -> None:
            out = first_tensor(output)
            if out is None or name in self.outputs or not out.is_floating_point():
                return
            self.outputs[name] = _bad(out)
            if out.requires_grad:
                def grad_hook(g: torch.Tensor) -> None:
                    if name not in self.output_grads:
                        self.output_grads[name] = _bad(g)
                self._tensor_handles.append(out.register_hook(grad_hook))
        return hook

    def after_backward(self, model: nn.Module) -> None:
        for name in self.param_layers:
            grads = [p.grad for p in self._modules[name].parameters(recurse=False) if p.grad is not None]
            if grads:
                self.weight_grads[name] = torch.stack([_bad(g) for g in grads]).amax(0)

    def after_update(self, model: nn.Module) -> None:
        for name in self.param_layers:
            params = [p for p in self._modules[name].parameters(recurse=False) if p.is_floating_point()]
            if params:
                self.weights[name] = torch.stack([_bad(p) for p in params]).amax(0)

    def first_hit(self, loss: torch.Tensor) -> tuple[str | None, str, str] | None:
        """(layer, where, "NaN"/"inf") of the first non-finite value of this step, or None.

        One host read for all flags. Codes: 0 finite, 1 infinite, 2 NaN.
        """
        groups = [("output", self.outputs), ("gradient", self.output_grads),
                  ("weight gradient", self.weight_grads), ("weights", self.weights)]
        keys = [(where, name) for where, d in groups for name in d]
        flags = [d[name] for where, d in groups for name in d]
        codes = torch.stack([*flags, _bad(loss)]).tolist() if flags else [int(_bad(loss))]
        found = dict(zip(keys, codes[:-1]))
        order = {n: i for i, n in enumerate(self.layers)}
        value = lambda code: "NaN" if code == 2 else "inf"  # noqa: E731

        def first(where: str, reverse: bool = False) -> tuple[str, int] | None:
            hits = sorted((order.get(n, len(order)), n, c) for (w, n), c in found.items() if w == where and c)
            if not hits:
                return None
            _, n, c = hits[-1] if reverse else hits[0]
            return n, c

        hit = first("output")
        if hit:
            return hit[0], "output", value(hit[1])
        if codes[-1]:
            return None, "loss", value(codes[-1])
        for where, reverse in (("gradient", True), ("weight gradient", False), ("weights", False)):
            hit = first(where, reverse)
            if hit:
                return hit[0], where, value(hit[1])
        return None


def parameters_finite(model: nn.Module) -> torch.Tensor:
    """(2,) bools on the device: every weight finite, every gradient finite (a captured step's check).

    A non-finite gradient turns its weights non-finite at the update, and they stay so, so checking
    the weights on captured steps finds one that never reached the loss, at no cost to other steps.
    ``isfinite`` is exact: a huge but finite value (whose norm would overflow) is no alarm."""
    params = [p for p in model.parameters() if p.is_floating_point()]
    if not params:
        return torch.ones(2, dtype=torch.bool)
    grads = [p.grad for p in params if p.grad is not None and not p.grad.is_sparse]
    device = params[0].device
    weights = torch.stack([torch.isfinite(p.detach()).all().to(device) for p in params]).all()
    gradients = torch.stack([torch.isfinite(g).all().to(device) for g in grads]).all() if grads else weights.new_ones(())
    return torch.stack((weights, gradients))


def _bad(t: torch.Tensor) -> torch.Tensor:
    """0 if every value of ``t`` is finite, 1 if some are infinite (none NaN), 2 if some are NaN."""
    t = t.detach()
    nan = torch.isnan(t).any()
    inf = torch.isinf(t).any()
    return torch.where(nan, 2, torch.where(inf, 1, 0)).to(torch.int64)


def locate_nonfinite(trainer: Trainer, snapshot: TrainerSnapshot, until_step: int, layers: Sequence[str],
                     param_layers: Sequence[str]) -> Divergence:
    """Replay from ``snapshot`` through ``until_step`` (the step whose loss was found non-finite),
    one step at a time under a :class:`NonFiniteWatch`, and say where the first non-finite value
    appeared. The trainer is left rolled back at ``snapshot``."""
    restore_snapshot(trainer, snapshot)
    hit: Divergence | None = None
    try:
        while trainer.step_count < until_step:
            with NonFiniteWatch(trainer.model, layers, param_layers) as watch:
                loss = trainer.step(observer=watch)
                found = watch.first_hit(loss)
            if found is not None:
                layer, where, value = found
                hit = Divergence(trainer.step_count, layer, where, value, snapshot.step)
                break
    finally:
        restore_snapshot(trainer, snapshot)
    return hit or Divergence(until_step, None, "output", "NaN", snapshot.step, reproduced=False)
