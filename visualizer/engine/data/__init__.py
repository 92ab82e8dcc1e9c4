"""Built-in datasets and the registry that builds them by name with checked parameters."""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable

# The builders are reached through their modules so that ``shapes`` and ``digits`` stay
# bound to the submodules here rather than being shadowed by the functions of the same name.
from . import digits, shapes, toy
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
}

_MAX_SAMPLES = 100_000


def dataset_names() -> list[str]:
    """Names accepted by ``make_dataset``: the 2-D toy sets first, then the image sets."""
    return list(DATASETS)


def _integer(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_params(args: dict[str, Any]) -> None:
    """Raise ``ValueError`` with a readable message if any argument is out of range."""
    for key, value in args.items():
        if key == "n_samples":
            _integer(key, value, 10, _MAX_SAMPLES)
        elif key in ("n_train", "n_val"):
            _integer(key, value, len(shapes.CLASS_NAMES), _MAX_SAMPLES)
        elif key == "n_classes":
            _integer(key, value, 2, 26)
        elif key == "upscale":
            _integer(key, value, 1, 8)
        elif key == "seed":
            _integer(key, value, 0)
        elif key == "noise":
            if _real(key, value) < 0:
                raise ValueError(f"noise must be >= 0, got {value}")
        elif key == "val_fraction":
            if not 0 < _real(key, value) < 1:
                raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {value}")
    if "n_classes" in args and args["n_samples"] < 2 * args["n_classes"]:
        n, k = args["n_samples"], args["n_classes"]
        raise ValueError(f"n_samples ({n}) must be at least twice n_classes ({k})")


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
    _check_params(bound.arguments)
    return builder(**params)
