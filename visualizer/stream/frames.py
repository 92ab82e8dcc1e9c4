"""Frames: small dataclasses of numpy arrays and plain numbers, one per capture.

A frame is what crosses the thread boundary. It holds the step it was taken at,
the monotonic time of capture, the per-step scalars since the previous frame, and
the heavy captures (activations, gradients, filters) of this step only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LayerInfo:
    """A watched leaf module: its dotted name, class name, output shape and own parameter count."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    num_params: int


@dataclass
class RunInfo:
    """What the views need to know about a run once, when it starts (not per frame)."""

    model_name: str
    data_name: str
    data_kind: str  # "plane", "image" or "sequence"
    input_shape: tuple[int, ...]
    class_names: list[str]
    layers: list[LayerInfo]
    param_layers: list[str]
    num_params: int
    device: str
    init_scheme: str
    config: dict[str, Any]
    spec: dict[str, Any]
    probe_indices: np.ndarray
    probe_labels: np.ndarray
    probe_inputs: np.ndarray  # (P, ...) as given to the model
    points: np.ndarray | None = None  # 2-D data: training points (N, 2)
    point_labels: np.ndarray | None = None
    steps_per_epoch: int = 1
    run_spec: dict[str, Any] = field(default_factory=dict)  # the RunSpec as a dict, when built from one
    labels_from_model: bool = False  # inputs without true labels, labelled by the model's own predictions
    analysis_labels: np.ndarray | None = None  # labels of the held-out set analyses use (first validation samples)
    tokens: list[str] | None = None  # sequence data: the symbol of each token id
    attention_layers: list[str] = field(default_factory=list)  # layers whose attention maps frames carry
    recurrent_layers: list[str] = field(default_factory=list)  # layers whose hidden states frames carry
    patch_grid: tuple[int, int] | None = None  # ViT: patches per column and row (token 0 is the class token)
    tokenizer: str | None = None  # typed text is tokenised in the worker by this tokenizer (Transformers models)

    @property
    def layer_names(self) -> list[str]:
        return [l.name for l in self.layers]


@dataclass
class ScalarChunk:
    """Per-step scalars for a run of consecutive steps (no holes between frames)."""

    steps: np.ndarray  # int64 (n,)
    values: dict[str, np.ndarray]  # name -> float64 (n,)

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> ScalarChunk:
        return cls(np.zeros(0, np.int64), {k: np.zeros(0) for k in names})

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def after(self, older: ScalarChunk) -> ScalarChunk:
        """This chunk with ``older`` prepended (used when a frame is overwritten unread)."""
        if len(older) == 0:
            return self
        names = self.values.keys() | older.values.keys()
        nan_old, nan_new = np.full(len(older), np.nan), np.full(len(self), np.nan)
        return ScalarChunk(
            np.concatenate([older.steps, self.steps]),
            {k: np.concatenate([older.values.get(k, nan_old), self.values.get(k, nan_new)]) for k in names},
        )


@dataclass
class LayerActivation:
    """One layer's output on the probe batch, reduced for display.

    ``maps`` is (P, C', h, w) for feature maps (first C' channels, average-pooled to at
    most h x w) or (P, U') for dense layers (first U' units). ``channel_mean`` and
    ``channel_max`` are (P, C) over all channels (or units). ``dead_fraction`` is the
    share of channels/units never positive on any of the inputs ``dead_basis`` names: for
    ReLU layers the last validation pass's inputs once there was one (the probe batch's few
    samples overstate it), else the probe samples.
    """

    name: str
    shape: tuple[int, ...]  # full output shape of one sample
    maps: np.ndarray
    channel_mean: np.ndarray
    channel_max: np.ndarray
    dead_fraction: float
    norm: float  # RMS of the output over the probe batch
    grad_norm: float  # RMS of d(probe loss)/d(output), NaN when not computed
    dead_basis: str = "the probe samples"  # the inputs ``dead_fraction`` was judged on


@dataclass
class LayerGradient:
    """Gradient and weight statistics of one parametrised layer on a training step."""

    name: str
    grad_norm: float
    weight_norm: float
    update_ratio: float  # ||w_after - w_before|| / ||w_before||; NaN until known
    weight_hist: np.ndarray  # counts over weight_edges
    grad_hist: np.ndarray  # counts of log10|g| over grad_edges
    weight_edges: np.ndarray
    grad_edges: np.ndarray


@dataclass
class ProbeOutputs:
    """The fixed probe batch, the model's predictions on it, and display inputs."""

    indices: np.ndarray  # indices into the validation split
    labels: np.ndarray  # int64 (P,), or (P, T) for per-token tasks
    probs: np.ndarray  # float32 (P, K), or (P, T, K) for per-token tasks
    inputs: np.ndarray  # (P, ...) raw inputs as given to the model, float32


@dataclass
class Frame:
    """Everything one capture produced. Fields other than the scalars may be empty."""

    step: int
    time: float  # time.monotonic() at capture
    epoch: float = 0.0
    scalars: ScalarChunk = field(default_factory=ScalarChunk.empty)
    val: dict[str, float] | None = None  # {"val_loss", "val_acc", "step"}
    layer_order: list[str] = field(default_factory=list)
    activations: dict[str, LayerActivation] = field(default_factory=dict)
    gradients: dict[str, LayerGradient] = field(default_factory=dict)
    filters: dict[str, np.ndarray] = field(default_factory=dict)
    probe: ProbeOutputs | None = None
    plane: dict[str, Any] | None = None  # 2-D inputs: "probs" (R, R, K), "units" {layer: (U, R, R)}, "extent"
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (P, heads, queries, keys)
    recurrent: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # layer -> {"hidden", "gates/..."}: (P, T, H)
    info: dict[str, Any] = field(default_factory=dict)

    def absorb(self, older: Frame) -> None:
        """Take over what an unread older frame carried that must not be lost."""
        self.scalars = self.scalars.after(older.scalars)
        if self.val is None and older.val is not None:
            self.val = older.val
