"""Inspect mode: a loaded or live model in a TrainingSession that has not trained.

The panels need frames, and frames come from a :class:`TrainingSession`; a session on a
loaded model with no steps taken shows the model as it is (activations, filters, outputs
for the probe samples). Stepping it fine-tunes the model on the dataset, with chosen
early layers frozen. Qt-free.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from visualizer.capture.session import CaptureSettings, TrainingSession
from visualizer.engine.data import DATASETS, Dataset, make_dataset
from visualizer.engine.data.base import MODEL_LABELS
from visualizer.engine.models import set_frozen
from visualizer.engine.trainer import TrainConfig, Trainer


def _output_size(model: nn.Module, shape: tuple[int, ...]) -> int | None:
    from visualizer.capture.layers import first_tensor

    p = next(model.parameters(), None)
    x = torch.zeros((2, *shape), device=p.device if p is not None else "cpu")
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = first_tensor(model(x))
    except Exception:  # noqa: BLE001 - a model that does not take this shape
        return None
    finally:
        model.train(was)
    return int(out.shape[-1]) if out is not None and out.dim() == 2 else None


def dataset_for(model: Any, data: Any = None, inputs: Any = None) -> Dataset:
    """The dataset to inspect ``model`` with: ``data`` (a built-in name or an (x, y) pair), the
    one the model was trained on, ``inputs`` labelled by the model's own predictions, or a
    built-in set whose input shape fits. ValueError with a one-line message if none fits."""
    module = getattr(model, "module", model)
    desc = getattr(model, "description", {}) or {}
    if inputs is None and data is None and callable(getattr(module, "sample_ids", None)):
        # a Transformers model: a few sample sentences, tokenised
        return _inputs_dataset(model, module, module.sample_ids(), "sample sentences")
    if inputs is not None:
        return _inputs_dataset(model, module, inputs)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(d) for d in data)
        names = getattr(model, "class_names", None) or [str(i) for i in range(int(y.max()) + 1)]
        return Dataset("custom", "image" if x.dim() == 4 else "plane", x.float(), y.long(), x.float(), y.long(), list(names))
    described = desc.get("data") if isinstance(desc.get("data"), dict) else {}
    name = data or described.get("name")
    if name:
        params = dict(described.get("params") or {}) if name == described.get("name") else {}
        return make_dataset(name, **params)
    shape = getattr(model, "input_shape", None)
    if shape is None:  # a live module: the first built-in set whose inputs it takes and whose classes it has
        for candidate in ("digits", "shapes", "spiral"):
            ds = make_dataset(candidate)
            if _output_size(module, ds.input_shape) == ds.num_classes:
                return ds
        raise ValueError("the model's input shape is unknown and no built-in dataset fits it: give the data "
                         "(a dataset name or an (x, y) pair) or its input shape")
    classes = _output_size(module, tuple(shape))
    for candidate in DATASETS:
        if candidate in ("shapes", "digits") or len(shape) == 1:
            ds = make_dataset(candidate)
            if ds.input_shape == tuple(shape) and (classes is None or classes == ds.num_classes):
                return ds
    raise ValueError(f"no built-in dataset has inputs of shape {tuple(shape)}"
                     + (f" and {classes} classes" if classes else "") + "; give the data to inspect it with")


def _inputs_dataset(model: Any, module: nn.Module, inputs: Any, name: str = "inputs") -> Dataset:
    """``inputs`` labelled by the model's own predictions: images, points, or token ids (N, T)."""
    x = torch.as_tensor(inputs)
    tokens = not x.is_floating_point()
    x = x.long() if tokens else x.float()
    if tokens and x.dim() != 2:
        raise ValueError(f"token inputs must be ids of shape (N, T), got {tuple(x.shape)}")
    with torch.no_grad():
        was = module.training
        module.eval()
        try:
            out = module(x.to(next(module.parameters()).device))
        except Exception as exc:  # noqa: BLE001 - any failure here is inputs the model cannot take
            raise ValueError(f"the model cannot run on inputs of shape {tuple(x.shape)}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        finally:
            module.train(was)
    from visualizer.capture.layers import first_tensor

    out = first_tensor(out)
    y = out.argmax(-1).cpu()
    names = getattr(model, "class_names", None)
    if not names or len(names) != out.shape[-1]:
        names = _token_names(model, module, out.shape[-1]) if tokens and out.dim() == 3 else None
    names = names or [str(i) for i in range(out.shape[-1])]
    own = {"labels": MODEL_LABELS}  # no true labels: the views must not count these as right
    if not tokens:
        return Dataset(name, "image" if x.dim() == 4 else "plane", x, y, x, y, list(names), params=own)
    return Dataset(name, "sequence", x, y, x, y, list(names), params=own, tokens=_token_names(model, module, None))


def _token_names(model: Any, module: nn.Module, count: int | None) -> list[str] | None:
    """The symbol of each token id: the tokenizer's vocabulary, the training data's symbols, or the ids."""
    symbols = getattr(module, "symbols", None)
    vocab = getattr(module, "vocab_size", None) or next(
        (m.num_embeddings for m in module.modules() if isinstance(m, nn.Embedding)), None)
    size = count or vocab
    if size is None:
        return None
    if callable(symbols):
        return symbols(range(size))
    known = getattr(model, "tokens", None)
    if known and len(known) >= size:
        return list(known[:size])
    return [str(i) for i in range(size)]


def inspect_session(model: Any, data: Any = None, inputs: Any = None, freeze: Sequence[str] = (),
                    config: TrainConfig | None = None, mailbox: Any = None,
                    settings: CaptureSettings | None = None) -> TrainingSession:
    """A session on ``model`` (an nn.Module or a LoadedModel) that shows it without training.

    Stepping the session fine-tunes it (``config``, default Adam at 1e-4); ``freeze`` names
    layers whose weights stay fixed. ValueError when the data does not fit the model.
    """
    module: nn.Module = getattr(model, "module", model)
    dataset = dataset_for(model, data, inputs)
    p = next(module.parameters(), None)
    device = p.device if p is not None else "cpu"
    trainer = Trainer(module, dataset, config or TrainConfig(lr=1e-4), device=device)
    try:
        session = TrainingSession(trainer, mailbox, settings)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"the model does not take {dataset.name} inputs of shape {dataset.input_shape}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    set_frozen(module, list(freeze))  # after the session found the trainable layers, so all are watched
    return session
