"""Which modules of a model are worth watching, in the order the forward pass runs them."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from visualizer.engine.outputs import first_tensor  # noqa: F401  (re-exported: probes use it from here)
from visualizer.stream.frames import LayerInfo

# Leaves whose output is a copy or reshaping of their input: nothing new to see.
SKIPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten)


@contextlib.contextmanager
def out_of_place(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Modules that work in place (``nn.ReLU(inplace=True)``, in-place dropout, ...) compute
    out of place for the duration, so an output kept by a hook is not overwritten by the next
    layer; the same values, one extra tensor per such layer. The flags are restored after."""
    switched = [m for m in modules if getattr(m, "inplace", False) is True]
    for m in switched:
        m.inplace = False
    try:
        yield
    finally:
        for m in switched:
            m.inplace = True


def float_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of the model's floating-point weights (float32 when it has none): what its
    float inputs are cast to."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def discover_layers(model: nn.Module, example: torch.Tensor | dict[str, torch.Tensor]) -> list[LayerInfo]:
    """Leaf modules in the order of their first call on ``example`` (eval mode, no grad).

    Dropout, identity and flatten leaves are skipped. Hooks are removed and the
    train/eval mode restored even if the forward pass raises.
    """
    named = {m: n for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    order: list[LayerInfo] = []
    seen: set[str] = set()

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        name = named[module]
        out = first_tensor(output)
        if name in seen or out is None or isinstance(module, SKIPPED):
            return
        seen.add(name)
        n_params = sum(p.numel() for p in module.parameters(recurse=False))
        order.append(LayerInfo(name, type(module).__name__, tuple(out.shape[1:]), n_params))

    handles = [m.register_forward_hook(hook) for m in named]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(**example) if isinstance(example, dict) else model(example)  # a dict: keyword inputs
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order


def parametrised(model: nn.Module, layers: list[LayerInfo]) -> list[str]:
    """Names among ``layers`` that own trainable parameters directly."""
    modules = dict(model.named_modules())
    return [l.name for l in layers if any(p.requires_grad for p in modules[l.name].parameters(recurse=False))]


def hook_count(model: nn.Module) -> int:
    """Forward, pre-forward and backward hooks still attached anywhere in ``model``."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total
