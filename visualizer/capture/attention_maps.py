"""Numbers computed from attention maps already on the host (numpy only, so the window's
process can use them without importing torch)."""
from __future__ import annotations

import numpy as np


def antidiagonal_share(weights: np.ndarray) -> float:
    """Share of attention mass on the anti-diagonal (query t attending key T-1-t), averaged
    over every leading axis (samples, heads). 1.0 is a perfect reversal pattern; uniform
    attention over T keys gives 1/T."""
    w = np.asarray(weights, dtype=np.float64)
    t = w.shape[-1]
    if w.shape[-2] != t:
        raise ValueError(f"need square attention maps, got {w.shape[-2]} queries x {t} keys")
    anti = w[..., np.arange(t), t - 1 - np.arange(t)]
    return float(anti.sum(-1).mean() / w.sum((-2, -1)).mean())


def attention_entropy(weights: np.ndarray) -> np.ndarray:
    """Mean entropy (nats) of the attention rows, over the last two axes: (..., Q, K) -> (...)."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, 1.0)
    return -(w * np.log(w)).sum(-1).mean(-1)


def attention_rollout(layers: list[np.ndarray], residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): heads averaged, the residual path mixed in
    as ``residual * I``, rows renormalised, multiplied through the layers in order.
    ``layers`` are (N, heads, T, T); returns (N, T, T) with rows summing to one."""
    out = None
    for w in layers:
        a = np.asarray(w, dtype=np.float64).mean(1)
        a = (1 - residual) * a + residual * np.eye(a.shape[-1])
        a /= a.sum(-1, keepdims=True)
        out = a if out is None else a @ out
    if out is None:
        raise ValueError("attention rollout needs at least one layer")
    return out
