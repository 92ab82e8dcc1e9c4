"""Small residual network; residual connections and batch norm are each switchable.

Layer names: ``stem.conv``, ``stem.norm``, ``stem.<act>``; per block
``stageS.blockB.conv1``, ``.norm1``, ``.<act>1``, ``.conv2``, ``.norm2``,
``.shortcut`` (1x1 conv, residual on and shape changes), ``.add`` (residual on),
``.<act>2``; then ``pool``, ``flatten``, ``head``. Norms exist only with batch norm.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .init import (
    MAX_CLASSES,
    Add,
    check_activation,
    check_bool,
    check_image_shape,
    check_init,
    check_int,
    check_ints,
    init_weights,
    make_activation,
)

MAX_STAGES = 6
MAX_WIDTH = 512
MAX_BLOCKS = 8


def _conv3x3(in_channels: int, out_channels: int, stride: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class Stem(nn.Module):
    """``conv -> [norm] -> activation`` at full resolution."""

    def __init__(self, in_channels: int, out_channels: int, activation: str, batch_norm: bool) -> None:
        super().__init__()
        self.activation_name = check_activation(activation)
        self.conv = _conv3x3(in_channels, out_channels, 1, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.add_module(activation, make_activation(activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stem to ``x`` of shape (N, C, H, W)."""
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        return getattr(self, self.activation_name)(out)


class BasicBlock(nn.Module):
    """Two 3x3 convs; with ``residual`` the block input (or its 1x1 projection) is added
    before the second activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        activation: str = "relu",
        batch_norm: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.act1_name = f"{check_activation(activation)}1"
        self.act2_name = f"{activation}2"
        self.conv1 = _conv3x3(in_channels, out_channels, stride, bias=not batch_norm)
        self.norm1 = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.add_module(self.act1_name, make_activation(activation))
        self.conv2 = _conv3x3(out_channels, out_channels, 1, bias=not batch_norm)
        self.norm2 = nn.BatchNorm2d(out_channels) if batch_norm else None
        needs_projection = residual and (stride != 1 or in_channels != out_channels)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            if needs_projection
            else None
        )
        self.add = Add() if residual else None
        self.add_module(self.act2_name, make_activation(activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (N, C, H, W)."""
        out = self.conv1(x)
        if self.norm1 is not None:
            out = self.norm1(out)
        out = getattr(self, self.act1_name)(out)
        out = self.conv2(out)
        if self.norm2 is not None:
            out = self.norm2(out)
        if self.add is not None:
            skip = self.shortcut(x) if self.shortcut is not None else x
            out = self.add(out, skip)
        return getattr(self, self.act2_name)(out)


class ResNet(nn.Module):
    """Stem, stages of ``BasicBlock``s (stride 2 at each later stage start), global
    average pool and a linear head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        activation: str = "relu",
        batch_norm: bool = True,
        residual: bool = True,
        init: str = "auto",
    ) -> None:
        super().__init__()
        in_channels, height, width = check_image_shape("resnet", input_shape)
        num_classes = check_int("num_classes", num_classes, 2, MAX_CLASSES)
        widths = check_ints("widths", widths, 1, MAX_WIDTH, MAX_STAGES)
        blocks_per_stage = check_int("blocks_per_stage", blocks_per_stage, 1, MAX_BLOCKS)
        check_activation(activation)
        batch_norm = check_bool("batch_norm", batch_norm)
        residual = check_bool("residual", residual)
        check_init(init)

        self.stem = Stem(in_channels, widths[0], activation, batch_norm)
        channels = widths[0]
        for s, stage_width in enumerate(widths, start=1):
            blocks: OrderedDict[str, nn.Module] = OrderedDict()
            for b in range(1, blocks_per_stage + 1):
                # Downsample at the start of every stage after the first, unless the map
                # would shrink below 2x2.
                stride = 2 if s > 1 and b == 1 and min(height, width) >= 4 else 1
                blocks[f"block{b}"] = BasicBlock(
                    channels, stage_width, stride, activation, batch_norm, residual
                )
                if stride == 2:
                    height, width = (height + 1) // 2, (width + 1) // 2
                channels = stage_width
            self.add_module(f"stage{s}", nn.Sequential(blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(channels, num_classes)
        self.num_stages = len(widths)
        self.init_scheme: str = init_weights(self, activation, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for images of shape (N, C, H, W)."""
        x = self.stem(x)
        for s in range(1, self.num_stages + 1):
            x = getattr(self, f"stage{s}")(x)
        return self.head(self.flatten(self.pool(x)))
