"""Tiny models and datasets for fast, exact unit tests."""
from __future__ import annotations

import torch
from torch import nn

from visualizer.engine.data.base import Dataset


def plane_dataset(n: int = 256, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    cut = int(n * 0.75)
    return Dataset("xor-test", "plane", x[:cut], y[:cut], x[cut:], y[cut:], ["same", "opposite"], {"n": n})


def image_dataset(n: int = 96, seed: int = 0, channels: int = 3, size: int = 8) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0.5).long()
    cut = int(n * 0.75)
    return Dataset("img-test", "image", x[:cut], y[:cut], x[cut:], y[cut:], ["dark", "bright"], {"n": n})


class TinyMLP(nn.Module):
    def __init__(self, dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.bn1 = nn.BatchNorm1d(16) if batch_norm else nn.Identity()
        self.relu1 = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(16, 16)
        self.relu2 = nn.ReLU()
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.relu1(self.bn1(self.fc1(x))))
        return self.head(self.relu2(self.fc2(x)))


class TinyCNN(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(8 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.head(self.drop(self.flatten(self.relu2(self.conv2(x)))))
