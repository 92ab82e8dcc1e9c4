"""visualizer: watch a neural network learn, layer by layer.

The public Python API (imports are lazy: ``import visualizer`` loads neither Qt nor torch):

- :func:`show` opens the app on a live ``nn.Module`` from a script or notebook;
- :func:`load_model` opens a model file (checkpoint, state dict, ``.pt2``, TorchScript,
  Transformers folder) and returns a :class:`~visualizer.engine.loading.LoadedModel`;
- :func:`internals` returns a model's outputs, activations, attention and attributions for
  given inputs as plain numpy arrays (named so, not ``capture``: ``visualizer.capture`` is the
  package of probes).
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "internals", "load_model", "show"]


def load_model(path: Any, trust: bool = False, **answers: Any) -> Any:
    """Open a model file; see :func:`visualizer.engine.loading.load_model`. Raises ``LoadError``."""
    from visualizer.engine.loading import load_model as _load

    return _load(path, trust=trust, **answers)


def internals(model: Any, inputs: Any, layers: Any = None, attribution: Any = (), target: Any = None) -> dict[str, Any]:
    """``{"output", "activations/<layer>", "attention/<layer>", "attribution/<method>", ...}`` as numpy
    arrays for ``inputs`` (a batch of tensors or arrays, token ids (N, T), or text: tokenised by a
    Transformers model's tokenizer or encoded with a built-in sequence dataset's symbols);
    ``model`` is an ``nn.Module`` or what :func:`load_model` returned."""
    from visualizer.capture.internals import capture as _capture

    return _capture(model, inputs, layers=layers, attribution=attribution, target=target)


def show(model: Any, data: Any = None, inputs: Any = None, block: bool = True) -> Any:
    """Open the app on ``model`` (an ``nn.Module`` or a loaded model) in this process.

    ``data`` names a built-in dataset (default: the one the model was trained on, else one
    that fits its input) or is a ``(x, y)`` pair of tensors; ``inputs`` (N, ...) are shown
    instead of validation samples. Training starts paused: panels show the model as it is.
    With ``block=False`` (e.g. in a notebook with a running Qt event loop) the window is returned.
    """
    from visualizer.ui.inspect import show as _show

    return _show(model, data=data, inputs=inputs, block=block)
