"""What a model's forward returns: a tensor, or tuples and dicts around one."""
from __future__ import annotations

import torch


def first_tensor(value: object) -> torch.Tensor | None:
    """The first tensor in a module output (tensors, tuples such as an LSTM's, dicts)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            t = first_tensor(v)
            if t is not None:
                return t
    return None
