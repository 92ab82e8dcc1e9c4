"""A run: which model, which data, which hyperparameters and device, built reproducibly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from visualizer.engine.data import make_dataset
from visualizer.engine.data.base import Dataset
from visualizer.engine.models import SEQUENCE_OPTIONS, build_model, model_options
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
    options = sequence_options(spec.model, dataset, spec.model_options)
    model = build_model(spec.model, dataset.input_shape, dataset.num_classes, **options)
    return Trainer(model, dataset, config, device=spec.device)


def sequence_options(arch: str, dataset: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the token-model settings a sequence dataset implies (vocabulary size,
    per-token output, causal mask) filled in where the person left them unset.

    Raises ValueError when a token dataset meets a model that cannot read token ids.
    """
    accepted = model_options(arch)
    if dataset.kind != "sequence":
        if "vocab_size" in accepted:
            raise ValueError(f"{arch} takes token sequences of shape (T,), not {dataset.kind} data ({dataset.name}); "
                             "use a sequence dataset: copy, reverse, sort, brackets, parity or text")
        return dict(options)
    if "vocab_size" not in accepted:
        readers = ", ".join(a for a in ("transformer", "rnn", "lstm", "gru"))
        raise ValueError(f"{arch} cannot read token sequences ({dataset.name}); use one of {readers}")
    implied = {
        "vocab_size": len(dataset.tokens or []) or int(dataset.x_train.max()) + 1,
        "per_token": dataset.y_train.dim() > 1,
        "causal": dataset.causal,
    }
    merged = {**{k: implied[k] for k in SEQUENCE_OPTIONS if k in accepted}, **options}
    if isinstance(merged["vocab_size"], int) and merged["vocab_size"] < implied["vocab_size"]:
        raise ValueError(f"vocab_size {merged['vocab_size']} is too small: {dataset.name} uses "
                         f"{implied['vocab_size']} token ids")
    return merged
