"""One device-to-host copy per frame: pack many small tensors, copy once, unpack as numpy."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def to_host(tree: Any) -> Any:
    """Copy every tensor in a nested dict/list/tuple to numpy with a single transfer.

    Floating tensors come back as float32 (float16 stays float16 in value range but is
    returned as float32), integer and bool tensors keep their kind via float64 packing.
    """
    leaves: list[torch.Tensor] = []
    _collect(tree, leaves)
    if not leaves:
        return tree
    if all(t.device.type == "cpu" for t in leaves):  # nothing to transfer: a copy of each, no packing
        arrays = [_cpu_array(t) for t in leaves]
    else:
        arrays = _unpack(_pack(leaves), leaves)
    return _rebuild(tree, iter(arrays))


# Module-level, not closures: a recursive closure refers to itself through its cell, and that
# cycle kept every capture's tensors and arrays alive until a garbage-collector pass.
def _collect(node: Any, leaves: list[torch.Tensor]) -> None:
    if isinstance(node, torch.Tensor):
        leaves.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _collect(v, leaves)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _collect(v, leaves)


def _rebuild(node: Any, arrays: Iterator[np.ndarray]) -> Any:
    if isinstance(node, torch.Tensor):
        return next(arrays)
    if isinstance(node, dict):
        return {k: _rebuild(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebuild(v, arrays) for v in node]
    if isinstance(node, tuple):
        return tuple(_rebuild(v, arrays) for v in node)
    return node


def _cpu_array(t: torch.Tensor) -> np.ndarray:
    """A copy of a CPU tensor as numpy with :func:`to_host`'s kinds (float32, bool or int64); a copy,
    as the packed path makes, so a later in-place update of the tensor (a weight) leaves it alone."""
    t = t.detach()
    if t.is_floating_point():
        return t.numpy().copy() if t.dtype == torch.float32 else t.float().numpy()
    if t.dtype == torch.bool:
        return t.numpy().copy()
    return t.numpy().astype(np.int64)


def _pack(leaves: list[torch.Tensor]) -> np.ndarray:
    """All leaves in one flat host array (one transfer)."""
    wide = any(not t.is_floating_point() for t in leaves)
    dtype = torch.float64 if wide and leaves[0].device.type != "mps" else torch.float32
    return torch.cat([t.detach().reshape(-1).to(dtype) for t in leaves]).cpu().numpy()


def _unpack(flat: np.ndarray, leaves: list[torch.Tensor]) -> list[np.ndarray]:
    arrays, offset = [], 0
    for t in leaves:
        n = t.numel()
        chunk = flat[offset : offset + n].reshape(tuple(t.shape))
        offset += n
        if t.is_floating_point():
            arrays.append(chunk.astype(np.float32, copy=False))
        elif t.dtype == torch.bool:
            arrays.append(chunk.astype(bool))
        else:
            arrays.append(chunk.astype(np.int64))
    return arrays
