"""Multi-layer perceptron for 2-D points or (flattened) images.

Layer names: ``flatten`` (image input only), ``hidden1.linear``, ``hidden1.norm``
(batch norm on), ``hidden1.<activation>``, ``hidden1.dropout``, ``hiddenK.add``
(K >= 2, residual on), ..., ``head``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .init import (
    MAX_CLASSES,
    Add,
    check_activation,
    check_bool,
    check_init,
    check_input_shape,
    check_int,
    check_probability,
    init_weights,
    make_activation,
)

MAX_DEPTH = 32
MAX_WIDTH = 4096


class DenseBlock(nn.Module):
    """``linear -> [norm] -> activation -> dropout -> [add input]``, each a named leaf."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and in_features != out_features:
            raise ValueError("a residual dense block needs in_features == out_features")
        self.activation_name = check_activation(activation)
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features) if batch_norm else None
        self.add_module(activation, make_activation(activation))
        self.dropout = nn.Dropout(dropout)
        self.add = Add() if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (N, in_features)."""
        out = self.linear(x)
        if self.norm is not None:
            out = self.norm(out)
        out = getattr(self, self.activation_name)(out)
        out = self.dropout(out)
        if self.add is not None:
            out = self.add(out, x)
        return out


class MLP(nn.Module):
    """Fully connected classifier with ``depth`` hidden layers of ``width`` units."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 3,
        width: int = 64,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        residual: bool = False,
        init: str = "auto",
    ) -> None:
        super().__init__()
        input_shape = check_input_shape(input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        depth = check_int("depth", depth, 1, MAX_DEPTH)
        width = check_int("width", width, 1, MAX_WIDTH)
        check_activation(activation)
        batch_norm = check_bool("batch_norm", batch_norm)
        dropout = check_probability("dropout", dropout)
        residual = check_bool("residual", residual)
        check_init(init)

        self.flatten = nn.Flatten() if len(input_shape) > 1 else None
        in_features = math.prod(input_shape)
        for k in range(1, depth + 1):
            block = DenseBlock(
                in_features if k == 1 else width,
                width,
                activation=activation,
                batch_norm=batch_norm,
                dropout=dropout,
                residual=residual and k > 1,
            )
            self.add_module(f"hidden{k}", block)
        self.head = nn.Linear(width, num_classes)
        self.depth = depth
        self.init_scheme: str = init_weights(self, activation, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for ``x`` of shape (N, *input_shape)."""
        if self.flatten is not None:
            x = self.flatten(x)
        for k in range(1, self.depth + 1):
            x = getattr(self, f"hidden{k}")(x)
        return self.head(x)
