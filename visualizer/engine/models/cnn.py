"""LeNet-like convolutional classifier.

Layer names: ``block1.conv``, ``block1.norm`` (batch norm on), ``block1.<activation>``,
``block1.pool`` (skipped when the map would shrink below 2x2), ..., ``flatten``,
``fc.linear``, ``fc.norm`` (batch norm on), ``fc.<activation>``, ``fc.dropout``, ``head``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .init import (
    MAX_CLASSES,
    check_activation,
    check_bool,
    check_image_shape,
    check_init,
    check_int,
    check_ints,
    check_probability,
    init_weights,
    make_activation,
)
from .mlp import MAX_WIDTH, DenseBlock

MAX_STAGES = 6
MAX_CHANNELS = 512
MAX_KERNEL = 11


class ConvBlock(nn.Module):
    """``conv -> [norm] -> activation -> [pool]``; the conv keeps the spatial size."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: str = "relu",
        batch_norm: bool = False,
        pool: bool = True,
    ) -> None:
        super().__init__()
        self.activation_name = check_activation(activation)
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm
        )
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.add_module(activation, make_activation(activation))
        self.pool = nn.MaxPool2d(2) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (N, C, H, W)."""
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = getattr(self, self.activation_name)(out)
        if self.pool is not None:
            out = self.pool(out)
        return out


class CNN(nn.Module):
    """Stages of conv/activation/pool, then one hidden fully connected layer and a head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        hidden: int = 128,
        init: str = "auto",
    ) -> None:
        super().__init__()
        in_channels, height, width = check_image_shape("cnn", input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        channels = check_ints("channels", channels, 1, MAX_CHANNELS, MAX_STAGES)
        kernel_size = check_int("kernel_size", kernel_size, 1, MAX_KERNEL)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (so padding keeps the size), got {kernel_size}")
        check_activation(activation)
        batch_norm = check_bool("batch_norm", batch_norm)
        dropout = check_probability("dropout", dropout)
        hidden = check_int("hidden", hidden, 1, MAX_WIDTH)
        check_init(init)

        for k, out_channels in enumerate(channels, start=1):
            pool = min(height, width) // 2 >= 2
            block = ConvBlock(in_channels, out_channels, kernel_size, activation, batch_norm, pool)
            self.add_module(f"block{k}", block)
            if pool:
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.flatten = nn.Flatten()
        self.fc = DenseBlock(
            in_channels * height * width, hidden, activation, batch_norm=batch_norm, dropout=dropout
        )
        self.head = nn.Linear(hidden, num_classes)
        self.num_blocks = len(channels)
        self.init_scheme: str = init_weights(self, activation, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for images of shape (N, C, H, W)."""
        for k in range(1, self.num_blocks + 1):
            x = getattr(self, f"block{k}")(x)
        return self.head(self.fc(self.flatten(x)))
