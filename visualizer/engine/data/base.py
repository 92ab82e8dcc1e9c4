"""The dataset record every built-in data source returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

MODEL_LABELS = "model predictions"  # ``params["labels"]`` of a set labelled by a model's own predictions


@dataclass
class Dataset:
    """A train/validation split held as tensors, small enough to live on the device.

    Images are float32 in [0, 1] with shape (N, C, H, W); 2-D toy sets are (N, 2);
    token sequences are int64 ids (N, T). Labels are int64 class indices, (N,) or, for
    per-token tasks, (N, T). ``params`` records how the set was made so a
    checkpoint can regenerate it exactly.
    """

    name: str
    kind: str  # "plane" (2-D points), "image", or "sequence"
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    class_names: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    tokens: list[str] | None = None  # sequence data: the symbol of each token id, for display
    causal: bool = False  # sequence data: targets at t depend on tokens up to t only (next-token tasks)

    @property
    def labels_from_model(self) -> bool:
        """No true labels: ``y`` are a model's own predictions, so views must not count them as right."""
        return self.params.get("labels") == MODEL_LABELS

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch dimension."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description: enough to rebuild the set with ``make_dataset``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "params": dict(self.params),
            "tokens": None if self.tokens is None else list(self.tokens),
            "causal": self.causal,
        }
