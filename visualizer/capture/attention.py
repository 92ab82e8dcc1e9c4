"""Attention maps and recurrent states of a probe batch, captured from outside the model.

``capture_attention`` reads every attention module: our ``SelfAttention`` (its
``keep_weights`` flag makes it compute and keep the weights for one forward pass),
PyTorch's ``nn.MultiheadAttention`` (called with ``need_weights`` for that pass), and any
module that reports its own maps (``attention_layer_names()``, ``keep_weights``,
``last_weights``: a wrapped Transformers model asking for ``output_attentions``).
``capture_recurrent`` records the hidden-state sequence of every ``nn.RNN``/``nn.LSTM``/
``nn.GRU`` and recomputes the gates of single-layer, one-directional LSTMs and GRUs from
their weights. Flags and hooks are always removed in ``finally``; the forward runs in
eval mode under ``no_grad`` with the random state restored, so nothing watched changes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from visualizer.capture.attention_maps import antidiagonal_share, attention_entropy, attention_rollout  # noqa: F401 (re-exported)
from visualizer.capture.probes import preserved_state
from visualizer.engine.models.attention import SelfAttention


def _reporters(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that report their own attention maps (``attention_layer_names()``, ``keep_weights``,
    ``last_weights`` {name: weights}), e.g. a wrapped Transformers model; by module name."""
    return {n: m for n, m in model.named_modules() if callable(getattr(m, "attention_layer_names", None))}


def _joined(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def attention_modules(model: nn.Module) -> list[str]:
    """Names of the attention layers in ``model`` that :func:`capture_attention` can read."""
    names = []
    for n, m in model.named_modules():
        if isinstance(m, SelfAttention) or _is_mha(m):
            names.append(n)
        elif callable(getattr(m, "attention_layer_names", None)):
            names.extend(_joined(n, a) for a in m.attention_layer_names())
    return names


def _is_mha(m: nn.Module) -> bool:
    """A live ``nn.MultiheadAttention`` (an exported program's stand-in for one computes its
    attention inside the graph and cannot be asked for its weights)."""
    from visualizer.engine.exported import Tap

    return isinstance(m, nn.MultiheadAttention) and not isinstance(m, Tap)


def recurrent_modules(model: nn.Module) -> list[str]:
    """Names of the ``nn.RNN``/``nn.LSTM``/``nn.GRU`` modules in ``model``."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.RNNBase)]


def record_attention(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``model(inputs)`` once (caller picks mode and grad) and return (output, {layer: weights}).

    Weights are device tensors (N, heads, queries, keys); every row sums to one.
    """
    modules = dict(model.named_modules())
    ours = [n for n, m in modules.items() if isinstance(m, SelfAttention)]
    theirs = [n for n, m in modules.items() if _is_mha(m)]
    reporters = _reporters(model)
    weights: dict[str, torch.Tensor] = {}
    handles = []

    def want_weights(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep(name: str):
        def hook(m: nn.Module, _args: tuple, out: Any) -> None:
            w = out[1] if isinstance(out, tuple) and len(out) > 1 else None
            if w is not None and name not in weights:
                weights[name] = w.detach() if w.dim() == 4 else w.detach()[:, None]
        return hook

    fast_path = torch.backends.mha.get_fastpath_enabled()
    try:
        for n in ours + list(reporters):
            modules[n].keep_weights = True
        for n in theirs:
            handles.append(modules[n].register_forward_pre_hook(want_weights, with_kwargs=True))
            handles.append(modules[n].register_forward_hook(keep(n)))
        if theirs:  # nn.TransformerEncoderLayer may take a fused fast path that skips its attention submodule
            torch.backends.mha.set_fastpath_enabled(False)
        out = model(inputs)
        for n in ours:
            if modules[n].last_weights is not None:
                weights[n] = modules[n].last_weights
        for n, m in reporters.items():
            weights.update({_joined(n, a): w for a, w in (m.last_weights or {}).items()})
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        for n in ours + list(reporters):
            modules[n].keep_weights = False
            modules[n].last_weights = None
        for h in handles:
            h.remove()
    return out, {n: weights[n] for n in attention_modules(model) if n in weights}


def capture_attention(model: nn.Module, inputs: torch.Tensor) -> dict[str, np.ndarray]:
    """Attention weights of every attention layer for ``inputs``: float32 (N, heads, queries, keys)."""
    with preserved_state(model, inputs.device), torch.no_grad():
        _, weights = record_attention(model, inputs)
    return {n: w.float().cpu().numpy() for n, w in weights.items()}


def _batch_first(out: torch.Tensor, module: nn.RNNBase) -> torch.Tensor:
    """(N, T, H) hidden states of the last layer, batch first, forward direction then backward."""
    return out if module.batch_first else out.transpose(0, 1)


def recurrent_gates(module: nn.RNNBase, x: torch.Tensor, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gates of a single-layer, one-directional LSTM or GRU, recomputed from its weights.

    ``x`` is its input (N, T, D) and ``hidden`` its output (N, T, H), batch first. LSTM:
    input, forget, cell candidate, output gates and the cell state; GRU: reset, update
    gates and the candidate. Each (N, T, H). Initial states are taken as zero.
    """
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    b_ih = getattr(module, "bias_ih_l0", None)
    b_hh = getattr(module, "bias_hh_l0", None)
    h_prev = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], 1)
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h_prev @ w_hh.T + (0 if b_hh is None else b_hh)
    if isinstance(module, nn.LSTM):
        i, f, g, o = (gi + gh).chunk(4, -1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        cells, c = [], torch.zeros_like(hidden[:, 0])
        for t in range(hidden.shape[1]):
            c = f[:, t] * c + i[:, t] * g[:, t]
            cells.append(c)
        return {"input": i, "forget": f, "candidate": g, "output": o, "cell": torch.stack(cells, 1)}
    if isinstance(module, nn.GRU):
        ir, iz, i_n = gi.chunk(3, -1)
        hr, hz, h_n = gh.chunk(3, -1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        return {"reset": r, "update": z, "candidate": (i_n + r * h_n).tanh()}
    return {}


def record_recurrent(model: nn.Module, inputs: torch.Tensor, forward: Any = None) -> dict[str, dict[str, torch.Tensor]]:
    """Device tensors for :func:`capture_recurrent` (caller picks mode and grad state).
    ``forward(inputs)`` runs the pass instead of ``model(inputs)`` (to share it with another recorder)."""
    modules = {n: m for n, m in model.named_modules() if isinstance(m, nn.RNNBase)}
    seen: dict[str, tuple[torch.Tensor, torch.Tensor, bool]] = {}

    def make_hook(name: str):
        def hook(m: nn.Module, args: tuple, out: Any) -> None:
            if name in seen or not isinstance(args[0], torch.Tensor):  # packed sequences: not shown
                return
            given_state = len(args) > 1 and args[1] is not None
            seen[name] = (_batch_first(args[0], m), _batch_first(out[0], m), given_state)
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items()]
    try:
        (forward or model)(inputs)
    finally:
        for h in handles:
            h.remove()
    result: dict[str, dict[str, torch.Tensor]] = {}
    for name, (x, hidden, given_state) in seen.items():
        m = modules[name]
        entry = {"hidden": hidden.detach()}
        simple = (m.num_layers == 1 and not m.bidirectional and not given_state
                  and getattr(m, "proj_size", 0) == 0 and x.dim() == 3)
        if simple:
            entry.update({f"gates/{k}": v.detach() for k, v in recurrent_gates(m, x, hidden).items()})
        result[name] = entry
    return result


def capture_recurrent(model: nn.Module, inputs: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
    """For each recurrent layer: {"hidden": (N, T, H)} plus, for single-layer one-directional
    LSTMs and GRUs without a projection, "gates/<name>" (N, T, H) for each gate."""
    with preserved_state(model, inputs.device), torch.no_grad():
        found = record_recurrent(model, inputs)
    return {n: {k: v.float().cpu().numpy() for k, v in e.items()} for n, e in found.items()}


def sequence_captures(model: nn.Module, inputs: torch.Tensor, recurrent: bool = True
                      ) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """Attention maps (float16) and recurrent states of ``inputs`` as device tensors, from one
    forward pass (eval mode, no grad, random state restored): what a frame carries."""
    with preserved_state(model, inputs.device), torch.no_grad():
        if recurrent:
            attention: dict[str, torch.Tensor] = {}

            def run(x: torch.Tensor) -> torch.Tensor:
                out, found = record_attention(model, x)
                attention.update(found)
                return out

            states = record_recurrent(model, inputs, forward=run)
        else:
            _, attention = record_attention(model, inputs)
            states = {}
    return {n: w.half() for n, w in attention.items()}, states


def inspect_job(model: nn.Module, tokens: Any, device: torch.device | str) -> Any:
    """Job (see ``capture.jobs``): the snapshot's predictions, attention maps and recurrent
    states for one typed sequence of token ids. Returns {"tokens": (T,), "probs": (T, K) or
    (K,), "attention": {layer: (heads, T, T)}, "recurrent": {layer: {name: (T, H)}}}.
    ValueError (now, not in the job) for ids the model cannot take."""
    from visualizer.capture.jobs import Progress, snapshot

    ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64)).reshape(1, -1)
    embed = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if ids.numel() == 0:
        raise ValueError("type at least one symbol")
    if embed is not None and (int(ids.min()) < 0 or int(ids.max()) >= embed.num_embeddings):
        raise ValueError(f"token ids must lie in 0..{embed.num_embeddings - 1}")
    limit = getattr(model, "max_len", None)
    if limit is not None and ids.shape[1] > limit:
        raise ValueError(f"the sequence has {ids.shape[1]} symbols; this model takes at most {limit}")
    model = snapshot(model)
    ids = ids.to(device)

    def job():
        yield Progress(0, 1, "running the model")
        attention, states = sequence_captures(model, ids)
        with torch.no_grad():
            probs = model(ids).float().softmax(-1)[0]
        return {
            "tokens": ids[0].cpu().numpy(),
            "probs": probs.cpu().numpy(),
            "attention": {n: w[0].float().cpu().numpy() for n, w in attention.items()},
            "recurrent": {n: {k: v[0].float().cpu().numpy() for k, v in e.items()} for n, e in states.items()},
        }

    return job()
