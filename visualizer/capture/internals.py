"""Capture a model's internals for given inputs as plain numpy arrays (for scripts and export).

``capture(model, inputs)`` returns ``{"output": ..., "activations/<layer>": ...,
"attention/<layer>": (N, heads, queries, keys), "attribution/<method>": ...,
"attribution_delta/<method>": ...}``. What a model cannot provide is left out and said in
:attr:`Capture.notes`. Every forward runs in eval mode with the random state preserved;
hooks are removed afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from visualizer.capture.layers import discover_layers, first_tensor
from visualizer.capture.probes import preserved_state, record_outputs

LOCAL_ATTRIBUTION = ("saliency", "integrated_gradients")


@dataclass
class Capture:
    """Arrays by key, and one line per thing that could not be captured."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return t.numpy() if not t.is_floating_point() else t.float().numpy()


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def prepare_inputs(model: Any, inputs: Any) -> torch.Tensor | dict[str, torch.Tensor]:
    """Tensors, numpy arrays, token dicts or text (with a loaded model's tokenizer) as model inputs.

    ValueError with a one-line message when the inputs do not fit the model's input shape.
    """
    tokenizer = getattr(model, "tokenizer", None)
    shape = getattr(model, "input_shape", None)
    module = getattr(model, "module", model)
    if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and all(isinstance(s, str) for s in inputs)):
        if tokenizer is None:
            raise ValueError("text input needs a model with a tokenizer (a Transformers folder)")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        enc = tokenizer(texts, return_tensors="pt", padding=True)
        return {k: v.to(_device(module)) for k, v in enc.items()}
    if isinstance(inputs, dict):
        return {k: torch.as_tensor(v).to(_device(module)) for k, v in inputs.items()}
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    if x.is_floating_point():
        x = x.float()
    if shape is not None:
        shape = tuple(shape)
        if tuple(x.shape) == shape:
            x = x[None]
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"inputs of shape {tuple(x.shape)} do not fit the model, which takes (N, {', '.join(map(str, shape))})")
    norm = getattr(model, "normalisation", None)
    if norm and x.is_floating_point() and x.dim() == 4:
        mean = torch.tensor(norm.get("mean", [0.0]), dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(norm.get("std", [1.0]), dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x.to(_device(module))


def capture_internals(model: Any, inputs: Any, layers: Sequence[str] | None = None,
                      attribution: Sequence[str] = (), target: int | Sequence[int] | None = None,
                      attention: bool = True) -> Capture:
    """Outputs, activations, attention and attributions of ``model`` (an nn.Module or a
    :class:`~visualizer.engine.loading.LoadedModel`) for ``inputs``; see the module docstring."""
    module: nn.Module = getattr(model, "module", model)
    kind = getattr(model, "kind", "module")
    x = prepare_inputs(model, inputs)
    result = Capture()
    result.notes.extend(getattr(model, "unavailable", []) or [])
    with preserved_state(module, _device(module)):
        if kind == "torchscript":
            with torch.no_grad():
                result.arrays["output"] = _numpy(first_tensor(module(x)))
        else:
            names = list(layers) if layers is not None else [l.name for l in discover_layers(module, _first(x))]
            out, outs = record_outputs(module, x, names)
            result.arrays["output"] = _numpy(out)
            for name in names:
                if name in outs:
                    result.arrays[f"activations/{name}"] = _numpy(outs[name])
        if attention:
            _attention(model, module, x, result)
    for method in attribution:
        _attribution(module, x, method, target, result)
    return result


def capture(model: Any, inputs: Any, layers: Sequence[str] | None = None, attribution: Sequence[str] = (),
            target: int | Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Plain numpy arrays of ``model``'s internals for ``inputs`` (see :func:`capture_internals`)."""
    return capture_internals(model, inputs, layers, attribution, target).arrays


def _first(x: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    return {k: v[:1] for k, v in x.items()} if isinstance(x, dict) else x[:1]


# ---------------------------------------------------------------------------- attention
def attention_modules(module: nn.Module) -> list[str]:
    """Outermost modules whose class name says attention, in registration order."""
    names: list[str] = []
    for name, m in module.named_modules():
        if name and ("Attention" in type(m).__name__ or isinstance(m, nn.MultiheadAttention)):
            if not any(name.startswith(n + ".") for n in names):
                names.append(name)
    return names


def _attention(model: Any, module: nn.Module, x: Any, result: Capture) -> None:
    found = attention_modules(module)
    if getattr(model, "kind", None) == "hf":
        with torch.no_grad():
            out = module(**x, output_attentions=True)
        maps = getattr(out, "attentions", None)
        if not maps:
            result.notes.append("attention: the model returned no attention weights")
            return
        names = found if len(found) == len(maps) else [f"layer{i}" for i in range(len(maps))]
        for name, a in zip(names, maps):
            result.arrays[f"attention/{name}"] = _numpy(a)
        return
    if not found:
        return  # nothing to say: the model has no attention
    try:
        from visualizer.capture.attention import capture_attention  # issue 5
    except ImportError:
        result.notes.append("attention: this build cannot capture attention of this model")
        return
    for name, a in capture_attention(module, x).items():
        result.arrays[f"attention/{name}"] = np.asarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------- attribution
def _attribution(module: nn.Module, x: Any, method: str, target: Any, result: Capture) -> None:
    if isinstance(x, dict):
        result.notes.append(f"attribution/{method}: not available for token inputs")
        return
    with preserved_state(module, _device(module)):
        with torch.no_grad():
            logits = first_tensor(module(x))
        if target is None:
            target_t = logits.argmax(-1)
        else:
            target_t = torch.as_tensor(target, device=x.device).expand(x.shape[0]).long()
        try:
            from visualizer.capture.attribution import attribute  # issue 6
        except ImportError:
            attribute = None
        if attribute is not None:
            found = attribute(module, x, method, target=target_t)
            values, delta = found.values, found.delta
        elif method in LOCAL_ATTRIBUTION:
            values, delta = _local_attribution(module, x, method, target_t)
        else:
            result.notes.append(f"attribution/{method}: unknown method; this build offers {', '.join(LOCAL_ATTRIBUTION)}")
            return
    result.arrays[f"attribution/{method}"] = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float32)
    if delta is not None:
        result.arrays[f"attribution_delta/{method}"] = np.asarray(
            delta.detach().cpu() if isinstance(delta, torch.Tensor) else delta, dtype=np.float32)


def _local_attribution(module: nn.Module, x: torch.Tensor, method: str, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Saliency (gradient of the target logit by the input) or Captum's integrated gradients."""
    forward = lambda inp: first_tensor(module(inp))  # noqa: E731 - outputs as a tensor for Captum
    if method == "saliency":
        inp = x.detach().clone().requires_grad_(True)
        score = forward(inp).gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(score, inp)
        return grad.abs(), None  # |gradient|, as Captum's Saliency
    from captum.attr import IntegratedGradients

    values, delta = IntegratedGradients(forward).attribute(x, target=target, n_steps=32, return_convergence_delta=True)
    return values, delta


def predict_job(model: nn.Module, inputs: Any) -> Any:
    """Job: class probabilities (N, K) for ``inputs`` (numpy), on a snapshot of ``model`` taken now."""
    from visualizer.capture.jobs import Progress, snapshot

    copy = snapshot(model)
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32), device=_device(copy))

    def run() -> Any:
        yield Progress(0, 1, "predicting")
        with torch.no_grad():
            logits = first_tensor(copy(x))
        return torch.softmax(logits.float(), -1).cpu().numpy()

    return run()
