"""Checkpoints: weights in safetensors plus a JSON description of model and dataset.

``save_checkpoint("run.safetensors", ...)`` writes ``run.safetensors`` (the description
is also embedded in its metadata) and ``run.json`` beside it. Both are written to a
temporary file first and renamed into place, so an interruption never leaves half a file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visualizer.files import atomic_write

FORMAT = "visualizer-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit; the message says why."""


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, description: dict[str, Any]) -> Path:
    """Save weights and ``description`` (must hold at least "model" with the model spec)."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(path.suffix + ".safetensors") if path.suffix else path.with_suffix(".safetensors")
    if not path.parent.exists():
        raise CheckpointError(f"cannot save to {path}: folder {path.parent} does not exist")
    desc = {"format": FORMAT, **description}
    text = json.dumps(desc, indent=2, default=str)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    try:
        atomic_write(path, save(tensors, metadata={"visualizer": text}))
        atomic_write(path.with_suffix(".json"), text.encode())
    except OSError as exc:
        raise CheckpointError(f"cannot save to {path}: {exc.strerror or exc}") from exc
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, description) from a checkpoint; CheckpointError for anything wrong."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot read {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({exc})") from exc
    text = meta.get("visualizer")
    sidecar = path.with_suffix(".json")
    if text is None and sidecar.exists():
        text = sidecar.read_text(errors="replace")
    if text is None:
        raise CheckpointError(f"{path.name} has no description of its model (no metadata and no {sidecar.name})")
    try:
        desc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"the description of {path.name} is not valid JSON ({exc.msg})") from exc
    if not isinstance(desc, dict) or "model" not in desc:
        raise CheckpointError(f"the description of {path.name} does not say which model it holds")
    return state, desc


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights."""
    from visualizer.engine.models import build_model

    state, desc = read_checkpoint(path)
    spec = desc["model"]
    options = spec.get("options", {}) if isinstance(spec, dict) else {}
    if not isinstance(options, dict):
        raise CheckpointError(f"cannot rebuild the model described in {Path(path).name}: its options are "
                              f"not a mapping of names to values")
    try:
        model = build_model(spec["arch"], tuple(spec["input_shape"]), int(spec["num_classes"]), **options)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot rebuild the model described in {Path(path).name}: {exc}") from exc
    bad = state_problems(model, state)
    if bad:
        raise CheckpointError(f"weights in {Path(path).name} do not fit the described model ({'; '.join(bad)})")
    model.load_state_dict(state)
    model.eval()
    return model, desc


def state_problems(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading into ``model`` strictly, one phrase per kind
    (missing keys, unexpected keys, wrong shapes: "head.weight (10, 128) vs (3, 128)")."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return ([f"missing keys: {', '.join(missing)}"] if missing else []) + \
           ([f"unexpected keys: {', '.join(unexpected)}"] if unexpected else []) + \
           ([f"wrong shapes: {', '.join(wrong)}"] if wrong else [])
