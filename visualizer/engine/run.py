"""A run: which model, which data, which hyperparameters and device, built reproducibly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
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
        """A spec from its JSON form; ValueError naming the field for anything of the wrong shape."""
        if not isinstance(d, dict):
            raise ValueError(f"a run description must be a JSON object, got {type(d).__name__}")
        _known("run description", d, {f.name for f in fields(cls)})
        d = dict(d)
        for key in ("model", "data", "device"):
            if key in d and not isinstance(d[key], str):
                raise ValueError(f"{key!r} must be a name (text), got {d[key]!r}")
        for key in ("model_options", "data_options"):
            if not isinstance(d.get(key, {}), dict):
                raise ValueError(f"{key!r} must be an object of options, got {d[key]!r}")
        config = d.get("config", {})
        if not isinstance(config, dict):
            raise ValueError(f"'config' must be an object of hyperparameters, got {config!r}")
        _known("config", config, {f.name for f in fields(TrainConfig)})
        for key, value in config.items():
            kinds = (str,) if key == "optimizer" else (int,) if key in ("batch_size", "seed") else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                what = "a name" if key == "optimizer" else "a whole number" if kinds == (int,) else "a number"
                raise ValueError(f"config {key!r} must be {what}, got {value!r}")
        d["config"] = TrainConfig(**config)
        return cls(**d)


def _known(what: str, d: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(map(str, d)) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) in the {what}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def build_trainer(spec: RunSpec) -> Trainer:
    """Make the dataset, seed, build the model and return its trainer.

    Raises ValueError with a readable message for any bad name or setting.
    """
    config = spec.config.validated()
    dataset = make_dataset(spec.data, **{"seed": config.seed, **spec.data_options})
    torch.manual_seed(config.seed)
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes, **spec.model_options)
    return Trainer(model, dataset, config, device=spec.device)
