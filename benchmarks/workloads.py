"""The fixed workloads every benchmark runs: model, data and batch size are set here,
not taken from the demos, so figures stay comparable as the app's defaults change."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from benchmarks.options import Options
    from benchmarks.report import Result

BATCH_SIZE = 64


@dataclass(frozen=True)
class Workload:
    """A model on a dataset, named ``<model>-<data>``; skipped (n/a) while either is missing."""

    model: str
    data: str
    model_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}-{self.data}"

    def missing(self) -> str | None:
        """Why this workload cannot run yet ("n/a (...)"), or None when it can."""
        from visualizer.engine.data import DATASETS
        from visualizer.engine.models import MODELS

        if self.model not in MODELS:
            return f"n/a (no {self.model} model yet)"
        if self.data not in DATASETS:
            return f"n/a (no {self.data} dataset yet)"
        return None

    def spec_dict(self, device: torch.device | str) -> dict[str, Any]:
        """The run spec as the main window takes it (a JSON-able dict)."""
        return {
            "model": self.model,
            "data": self.data,
            "model_options": dict(self.model_options),
            "data_options": dict(self.data_options),
            "config": {"optimizer": "adam", "lr": 1e-3, "batch_size": BATCH_SIZE, "seed": 0},
            "device": str(device),
        }

    def build(self, device: torch.device | str) -> Any:
        """A fresh :class:`~visualizer.engine.trainer.Trainer`, built the way the app builds one."""
        from visualizer.engine.run import RunSpec, build_trainer

        return build_trainer(RunSpec.from_dict(self.spec_dict(device)))


MLP_SPIRAL = Workload("mlp", "spiral", {"depth": 3, "width": 64})
CNN_SHAPES = Workload("cnn", "shapes")  # the CNN's default options
# The Transformer's sizes are fixed here so figures stay comparable as its defaults change.
TRANSFORMER_REVERSE = Workload("transformer", "reverse", {"num_layers": 2, "num_heads": 4, "d_model": 64, "ff_width": 128})

WORKLOADS: tuple[Workload, ...] = (MLP_SPIRAL, CNN_SHAPES, TRANSFORMER_REVERSE)


def run_each(section: str, keys: Sequence[str], opts: Options, measure: Callable[[Workload], list[Result]],
             workloads: Sequence[Workload] = WORKLOADS) -> list[Result]:
    """``measure`` every workload that can run; an n/a row per key for those that cannot yet,
    and a "failed" row per key for one that breaks (the others still run)."""
    import traceback

    from benchmarks.report import not_available

    results: list[Result] = []
    for workload in workloads:
        reason = workload.missing()
        if reason:
            results += [not_available(key, workload.key, reason, opts.device_type) for key in keys]
            continue
        opts.log(f"{section}: {workload.key}")
        try:
            results += measure(workload)
        except Exception as exc:
            opts.log(traceback.format_exc())
            note = f"failed: {type(exc).__name__}: {exc}"[:160]
            results += [not_available(key, workload.key, note, opts.device_type) for key in keys]
    return results


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (the app's own choice) as a torch device."""
    from visualizer.engine.devices import pick_device

    return pick_device(name)


def device_name(device: torch.device) -> str:
    """A readable name of the device: the GPU's, or the CPU model with its core count."""
    import os

    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}"
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        import platform

        model = platform.processor()
    return f"CPU {model or '(unknown model)'}, {os.cpu_count()} cores".strip()
