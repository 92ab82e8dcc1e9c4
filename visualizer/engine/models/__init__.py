"""Built-in models, the registry that builds them from JSON-able specs, and small
model utilities (dropout control, per-layer summaries, parameter counts).

Every model names its interesting operations as leaf modules with readable dotted
names (``hidden1.relu``, ``stage2.block1.add``, ...), registered in forward order,
so forward hooks attached from outside see each step.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Sequence

import torch
from torch import nn

from .cnn import CNN
from .init import Add, check_input_shape, check_probability, init_weights
from .mlp import MLP
from .recurrent import GRU, LSTM, RNN
from .resnet import ResNet
from .transformer import Transformer
from .vit import ViT

__all__ = [
    "MODELS",
    "MLP",
    "CNN",
    "ResNet",
    "Transformer",
    "RNN",
    "LSTM",
    "GRU",
    "ViT",
    "SEQUENCE_OPTIONS",
    "Add",
    "LayerSummary",
    "build_model",
    "count_parameters",
    "init_weights",
    "model_options",
    "parameter_summary",
    "set_dropout",
    "set_frozen",
]

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP, "cnn": CNN, "resnet": ResNet,
    "transformer": Transformer, "rnn": RNN, "lstm": LSTM, "gru": GRU, "vit": ViT,
}

#: Options a run builder fills from a token dataset when the person has not set them.
SEQUENCE_OPTIONS = ("vocab_size", "per_token", "causal")

_POSITIONAL = ("input_shape", "num_classes")


def _model_class(arch: str) -> type[nn.Module]:
    if not isinstance(arch, str) or arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; valid architectures: {', '.join(MODELS)}")
    return MODELS[arch]


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, numpy/torch scalars -> Python numbers, recursively."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    raise ValueError(f"option value {value!r} is not JSON-serialisable")


def model_options(arch: str) -> dict[str, Any]:
    """Default options of ``arch`` (JSON-friendly: sequences as lists)."""
    params = inspect.signature(_model_class(arch).__init__).parameters
    return {
        name: _jsonable(p.default)
        for name, p in params.items()
        if name != "self" and name not in _POSITIONAL
    }


def build_model(arch: str, input_shape: Sequence[int], num_classes: int, **options: Any) -> nn.Module:
    """Build ``arch`` for one-sample ``input_shape`` and ``num_classes`` classes.

    Raises ValueError with a readable message for an unknown arch or option, a value
    out of range, or an input shape the arch cannot take. The result carries
    ``model.spec`` (JSON-serialisable) that rebuilds it via
    ``build_model(spec["arch"], spec["input_shape"], spec["num_classes"], **spec["options"])``,
    and ``model.init_scheme`` (the concrete init scheme used).
    """
    cls = _model_class(arch)
    defaults = model_options(arch)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown option(s) for {arch!r}: {', '.join(unknown)}; "
            f"valid options: {', '.join(defaults)}"
        )
    shape = check_input_shape(input_shape)
    merged = {**defaults, **options}
    model = cls(shape, num_classes, **merged)
    model.spec = {
        "arch": arch,
        "input_shape": list(shape),
        "num_classes": int(num_classes),
        "options": _jsonable(merged),
    }
    return model


def set_dropout(model: nn.Module, p: float) -> int:
    """Set the rate of every dropout module in ``model`` to ``p``; return how many changed.

    Also updates ``model.spec["options"]["dropout"]`` when present, so a checkpoint
    rebuilds the model with the current rate.
    """
    p = check_probability("dropout", p)
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = p
            changed += 1
    spec = getattr(model, "spec", None)
    if isinstance(spec, dict) and "dropout" in spec.get("options", {}):
        spec["options"]["dropout"] = p
    return changed


def set_frozen(model: nn.Module, layers: Sequence[str]) -> int:
    """Freeze the parameters of ``layers`` (and their submodules), unfreeze all others; returns
    how many parameter tensors are frozen. ValueError naming any layer the model lacks."""
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"no such layer(s): {', '.join(missing)}")
    frozen_params = {id(p) for n in layers for p in modules[n].parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen_params)
    return len(frozen_params)


@dataclass(frozen=True)
class LayerSummary:
    """One leaf module: dotted name, class name, output shape without batch, own parameters."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    num_params: int


def parameter_summary(model: nn.Module, input_shape: Sequence[int]) -> list[LayerSummary]:
    """Summarise the leaf modules of ``model`` in forward order.

    Runs one zero-input forward of batch size 1 in eval mode under ``torch.no_grad``;
    the previous train/eval mode of every module is restored afterwards. Leaves that the
    forward never reached come last, with an empty output shape.
    """
    shape = check_input_shape(input_shape)
    leaves = [(name, m) for name, m in model.named_modules() if name and not any(m.children())]
    outputs: dict[str, tuple[int, ...]] = {}
    order: list[str] = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if name in outputs:
                return
            tensor = output
            while isinstance(tensor, (tuple, list)) and tensor:
                tensor = tensor[0]
            outputs[name] = tuple(tensor.shape[1:]) if isinstance(tensor, torch.Tensor) else ()
            order.append(name)

        return hook

    modes = {m: m.training for m in model.modules()}
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    handles = [m.register_forward_hook(make_hook(name)) for name, m in leaves]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training

    by_name = dict(leaves)
    names = order + [name for name, _ in leaves if name not in outputs]
    return [
        LayerSummary(
            name=name,
            kind=type(by_name[name]).__name__,
            output_shape=outputs.get(name, ()),
            num_params=sum(p.numel() for p in by_name[name].parameters()),
        )
        for name in names
    ]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Total number of parameter elements (only those requiring grad if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
