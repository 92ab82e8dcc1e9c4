"""Built-in datasets and the registry that builds them by name with checked parameters."""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable

# The builders are reached through their modules so that ``shapes`` and ``digits`` stay
# bound to the submodules here rather than being shadowed by the functions of the same name.
from . import digits, sequences, shapes, toy
from .base import Dataset

__all__ = ["DATASETS", "Dataset", "dataset_names", "make_dataset"]

DATASETS: dict[str, Callable[..., Dataset]] = {
    "spiral": toy.spiral,
    "moons": toy.moons,
    "circles": toy.circles,
    "xor": toy.xor,
    "blobs": toy.blobs,
    "shapes": shapes.shapes,
    "digits": digits.digits,
    "copy": sequences.copy,
    "reverse": sequences.reverse,
    "sort": sequences.sort,
    "brackets": sequences.brackets,
    "parity": sequences.parity,
    "text": sequences.text,
}

_MAX_SAMPLES = 100_000


def dataset_names() -> list[str]:
    """Names accepted by ``make_dataset``: the 2-D toy sets, the image sets, then the sequence tasks."""
    return list(DATASETS)


def _integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int (whole floats such as 1000.0 are accepted) within [low, high]."""
    whole_float = isinstance(value, numbers.Real) and math.isfinite(value) and value == int(value)
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) or whole_float):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _real(name: str, value: Any, low: float, high: float | None = None) -> float:
    """``value`` as a finite float: at least ``low``, or strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if high is None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    if high is not None and not low < value < high:
        raise ValueError(f"{name} must lie strictly between {low} and {high}, got {value}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "n_samples": lambda k, v: _integer(k, v, 10, _MAX_SAMPLES),
    "n_train": lambda k, v: _integer(k, v, len(shapes.CLASS_NAMES), _MAX_SAMPLES),
    "n_val": lambda k, v: _integer(k, v, len(shapes.CLASS_NAMES), _MAX_SAMPLES),
    "n_classes": lambda k, v: _integer(k, v, 2, 26),
    "upscale": lambda k, v: _integer(k, v, 1, 8),
    "seq_len": lambda k, v: _integer(k, v, 2, 256),
    "vocab": lambda k, v: _integer(k, v, 2, len(sequences.DIGITS)),
    "seed": lambda k, v: _integer(k, v, 0),
    "noise": lambda k, v: _real(k, v, 0.0),
    "val_fraction": lambda k, v: _real(k, v, 0.0, 1.0),
}


def _checked(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments converted to plain ints and floats; ``ValueError`` if any is out of range."""
    out = {k: _CHECKS[k](k, v) if k in _CHECKS else v for k, v in args.items()}
    if "n_classes" in out and out["n_samples"] < 2 * out["n_classes"]:
        n, k = out["n_samples"], out["n_classes"]
        raise ValueError(f"n_samples ({n}) must be at least twice n_classes ({k})")
    return out


def make_dataset(name: str, **params: Any) -> Dataset:
    """Build the named dataset; ``make_dataset(ds.name, **ds.params)`` rebuilds ``ds`` exactly.

    Raises ``ValueError`` for an unknown name, an unknown parameter or an out-of-range value.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}")
    builder = DATASETS[name]
    signature = inspect.signature(builder)
    unknown = sorted(set(params) - set(signature.parameters))
    if unknown:
        raise ValueError(
            f"dataset {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(signature.parameters)}"
        )
    bound = signature.bind(**params)
    bound.apply_defaults()
    return builder(**_checked(bound.arguments))
