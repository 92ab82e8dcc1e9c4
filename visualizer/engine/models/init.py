"""Shared building blocks of the built-in models: activations, the residual ``Add``
leaf, argument checks, and weight initialisation.

Activation choice and initialisation live together because the "auto" scheme
depends on the activation: Kaiming (He) for the ReLU family, Xavier (Glorot) for
saturating functions.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable

import torch
from torch import nn

#: Activation name -> factory. The name is also the module's attribute name.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "gelu": lambda: nn.GELU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
}

#: Activations that "auto" initialises with Kaiming (He) normal; the rest get Xavier.
RELU_FAMILY: frozenset[str] = frozenset({"relu", "gelu"})

#: Accepted values of the ``init`` option.
INIT_SCHEMES: tuple[str, ...] = ("auto", "kaiming", "xavier", "default")

#: Upper bound on ``num_classes`` (a sanity limit, not a hard technical one).
MAX_CLASSES = 100_000


class Add(nn.Module):
    """Leaf module for a residual sum, so a forward hook sees the block output."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Return ``a + b`` (out of place)."""
        return a + b


def check_activation(activation: str) -> str:
    """Return ``activation`` if known, else raise a ValueError listing the valid ones."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; valid activations: {', '.join(ACTIVATIONS)}"
        )
    return activation


def make_activation(activation: str) -> nn.Module:
    """A fresh, non-in-place activation module for ``activation``."""
    return ACTIVATIONS[check_activation(activation)]()


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` as int if it is an integer in ``[lo, hi]``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def check_ints(name: str, values: object, lo: int, hi: int, max_len: int) -> tuple[int, ...]:
    """Return a non-empty sequence of integers in ``[lo, hi]`` as a tuple, else raise."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of integers, got {values!r}")
    items = tuple(values)  # type: ignore[arg-type]
    if not 1 <= len(items) <= max_len:
        raise ValueError(f"{name} must have 1 to {max_len} entries, got {len(items)}")
    return tuple(check_int(f"each entry of {name}", v, lo, hi) for v in items)


def check_input_shape(input_shape: object) -> tuple[int, ...]:
    """Return ``input_shape`` (one sample, no batch dimension) as a tuple of positive ints."""
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(f"input_shape must be a sequence of sizes, got {input_shape!r}")
    shape = tuple(input_shape)  # type: ignore[arg-type]
    if not shape or any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be a non-empty list of positive integers, got {input_shape!r}")
    return tuple(int(s) for s in shape)


def check_image_shape(arch: str, input_shape: object) -> tuple[int, int, int]:
    """Return ``input_shape`` as (C, H, W), or raise a ValueError that says what is wrong."""
    shape = check_input_shape(input_shape)
    if len(shape) == 1:
        raise ValueError(
            f"{arch} is an image model and needs input of shape (C, H, W), but got point "
            f"input of shape {shape}; use 'mlp' for 2-D point data"
        )
    if len(shape) != 3:
        raise ValueError(f"{arch} needs image input of shape (C, H, W), got {shape}")
    return shape  # type: ignore[return-value]


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool, else raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as float if it is a number in ``[0, 1)``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_init(scheme: object) -> str:
    """Return ``scheme`` if it is a known init scheme, else raise ValueError."""
    if not isinstance(scheme, str) or scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid schemes: {', '.join(INIT_SCHEMES)}")
    return scheme


def resolve_scheme(activation: str, scheme: str = "auto") -> str:
    """The concrete scheme ("kaiming", "xavier" or "default") that ``scheme`` means."""
    check_activation(activation)
    check_init(scheme)
    if scheme != "auto":
        return scheme
    return "kaiming" if activation in RELU_FAMILY else "xavier"


def init_weights(model: nn.Module, activation: str, scheme: str = "auto") -> str:
    """Initialise every Linear/Conv weight of ``model`` and return the scheme used.

    - "kaiming": He normal, fan_in, ReLU gain (std = sqrt(2 / fan_in)).
    - "xavier": Glorot uniform, gain 1 (std = sqrt(2 / (fan_in + fan_out))).
    - "auto": "kaiming" for relu/gelu, "xavier" for tanh/sigmoid.
    - "default": PyTorch's own initialisation, left untouched.

    With "kaiming"/"xavier", biases are zeroed and batch-norm layers reset to
    weight 1, bias 0.
    """
    used = resolve_scheme(activation, scheme)
    if used == "default":
        return used
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                if used == "kaiming":
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(module.weight, gain=1.0)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
    return used


def expected_std(scheme: str, fan_in: int, fan_out: int) -> float:
    """Theoretical weight std of ``scheme`` ("kaiming" or "xavier") for the given fans."""
    if scheme == "kaiming":
        return math.sqrt(2.0 / fan_in)
    if scheme == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    raise ValueError(f"no closed-form std for scheme {scheme!r}")
