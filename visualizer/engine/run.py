"""A run: which model, which data, which hyperparameters and device, built reproducibly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from visualizer.engine.data import make_dataset
from visualizer.engine.models import build_model
from visualizer.engine.trainer import TrainConfig, Trainer



@dataclass
class RunSpec:
    """Everything needed to start a run again from scratch (JSON-serialisable)."""

    model: str = "cnn"
    data: str = "shapes"
    model_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    config: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["config"] = TrainConfig(**d.get("config", {}))
        return cls(**d)


def build_trainer(spec: RunSpec) -> Trainer:
    """Make the dataset, seed, build the model and return its trainer.

    Raises ValueError with a readable message for any bad name or setting.
    """
    config = spec.config.validated()
    dataset = make_dataset(spec.data, **{"seed": config.seed, **spec.data_options})
    torch.manual_seed(config.seed)
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes, **spec.model_options)
    return Trainer(model, dataset, config, device=spec.device)
