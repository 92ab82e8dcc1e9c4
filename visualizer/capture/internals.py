"""Capture a model's internals for given inputs as plain numpy arrays (for scripts and export).

``capture(model, inputs)`` returns ``{"output": ..., "activations/<layer>": ...,
"attention/<layer>": (N, heads, queries, keys), "attribution/<method>": ...,
"attribution_delta/<method>": ...}``. What a model cannot provide is left out and said in
:attr:`Capture.notes`. Every forward runs in eval mode with the random state preserved;
hooks are removed afterwards.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from visualizer.capture.attention import attention_modules, capture_attention
from visualizer.capture.layers import discover_layers, first_tensor, float_dtype
from visualizer.capture.probes import preserved_state, record_outputs


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


def _takes_token_ids(module: nn.Module) -> bool:
    """Whether integer inputs are token ids rather than pixel values: the model has an
    nn.Embedding, an exported program's graph looks up embeddings, or it is TorchScript (whose
    inside cannot be read: its inputs are passed on as given)."""
    from visualizer.engine.loading import ScriptedModel

    if isinstance(module, ScriptedModel) or any(isinstance(m, nn.Embedding) for m in module.modules()):
        return True
    graph = getattr(module, "graph", None)
    return graph is not None and any("embedding" in str(getattr(n, "target", "")) for n in graph.nodes)


def prepare_inputs(model: Any, inputs: Any) -> torch.Tensor:
    """Tensors, numpy arrays, token ids (or a tokenizer's dict) or text as a batch of model inputs.

    Text is tokenised with a Transformers model's tokenizer, or encoded symbol by symbol
    with the token symbols of the built-in sequence dataset the model was trained on.
    ValueError with a one-line message when the inputs do not fit the model.
    """
    shape = getattr(model, "input_shape", None)
    module = getattr(model, "module", model)
    if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and all(isinstance(s, str) for s in inputs)):
        return _encode_texts(model, module, [inputs] if isinstance(inputs, str) else list(inputs))
    if isinstance(inputs, Mapping):  # a tokenizer's output: the ids (the attention mask is rebuilt from the padding)
        if "input_ids" not in inputs:
            raise ValueError(f"token inputs need 'input_ids'; got {', '.join(map(str, inputs)) or 'an empty dict'}")
        inputs = inputs["input_ids"]
    if isinstance(inputs, (list, tuple)) and len(inputs) > 1 and any(isinstance(v, (torch.Tensor, np.ndarray)) for v in inputs):
        raise ValueError(f"models are looked at through one input tensor (a batch); {len(inputs)} were given: "
                         "wrap a model with several inputs in a module that takes one")
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    if not x.is_floating_point() and not _takes_token_ids(module):
        x = x.float()  # whole numbers for a model without an embedding: pixel values, say
    if x.is_floating_point():
        x = x.to(float_dtype(module))
    if shape is not None:
        shape = tuple(shape)
        if tuple(x.shape) == shape:
            x = x[None]
        if tuple(x.shape[1:]) != shape and not (len(shape) == 1 and x.dim() == 2 and not x.is_floating_point()
                                                 and x.shape[1] <= shape[0]):
            raise ValueError(f"inputs of shape {tuple(x.shape)} do not fit the model, which takes (N, {', '.join(map(str, shape))})")
    norm = getattr(model, "normalisation", None)
    if norm and x.is_floating_point() and x.dim() == 4:
        mean = torch.tensor(norm.get("mean", [0.0]), dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(norm.get("std", [1.0]), dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x.to(_device(module))


def _encode_texts(model: Any, module: nn.Module, texts: list[str]) -> torch.Tensor:
    """(N, T) token ids for ``texts``: the model's tokenizer (padded), or the dataset's symbols."""
    if callable(getattr(module, "encode", None)) and getattr(module, "tokenizer", None) is not None:
        rows = [module.encode(t) for t in texts]
        pad = module.pad_id if module.pad_id is not None else 0
    else:
        symbols = getattr(model, "tokens", None)
        if not symbols:
            raise ValueError("text input needs a model with a tokenizer (a Transformers folder) or one trained on "
                             "a built-in sequence dataset")
        from visualizer.engine.data.sequences import encode

        rows = [encode(symbols, t) for t in texts]
        limit = (getattr(model, "input_shape", None) or (None,))[0] or getattr(module, "max_len", None)
        if limit is not None and max(len(r) for r in rows) > limit:
            raise ValueError(f"the text has {max(len(r) for r in rows)} symbols; this model takes at most {limit}")
        if len({len(r) for r in rows}) > 1:
            raise ValueError("give texts of one length (the model has no padding symbol)")
        pad = 0
    length = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (length - len(r)) for r in rows], dtype=torch.long)
    return ids.to(_device(module))


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
        if attention and kind != "torchscript":
            _attention(module, x, result)
    for method in attribution:
        _attribution(module, x, method, target, result)
    return result


def capture(model: Any, inputs: Any, layers: Sequence[str] | None = None, attribution: Sequence[str] = (),
            target: int | Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Plain numpy arrays of ``model``'s internals for ``inputs`` (see :func:`capture_internals`)."""
    return capture_internals(model, inputs, layers, attribution, target).arrays


def _first(x: torch.Tensor) -> torch.Tensor:
    return x[:1]


def _attention(module: nn.Module, x: torch.Tensor, result: Capture) -> None:
    """Every attention layer's weights (N, heads, queries, keys), by :func:`capture_attention`."""
    if not attention_modules(module):
        return  # nothing to say: the model has no attention we can read
    found = capture_attention(module, x)
    if not found:
        result.notes.append("attention: the model returned no attention weights")
    for name, a in found.items():
        result.arrays[f"attention/{name}"] = a


def _attribution(module: nn.Module, x: torch.Tensor, method: str, target: Any, result: Capture) -> None:
    """One method's attributions by :func:`~visualizer.capture.attribution.attribute` (token inputs:
    one score per token; per-position outputs: the last position)."""
    from visualizer.capture.attribution import attribute

    found = attribute(module, x, method, target=target)
    result.arrays[f"attribution/{method}"] = np.asarray(found.values, dtype=np.float32)
    if found.delta is not None:
        result.arrays[f"attribution_delta/{method}"] = np.asarray(found.delta, dtype=np.float32)


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
