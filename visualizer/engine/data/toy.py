"""Two-dimensional toy classification sets: spiral, moons, circles, xor and gaussian blobs.

Every set lies roughly in [-1.5, 1.5] on both axes so it can be plotted and fed to an MLP
without further normalisation. Randomness comes only from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import string

import numpy as np
import torch

from .base import Dataset


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split ``(x, y)`` class by class, so a class of two or more reaches both splits.

    Returns ``(x_train, y_train, x_val, y_val)``, each split in a random order.
    """
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(len(idx) * val_fraction))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    tr = rng.permutation(np.concatenate(train_idx))
    va = rng.permutation(np.concatenate(val_idx))
    return x[tr], y[tr], x[va], y[va]


def _class_sizes(n_samples: int, n_classes: int) -> list[int]:
    """Split ``n_samples`` into ``n_classes`` sizes that differ by at most one."""
    return [n_samples // n_classes + (i < n_samples % n_classes) for i in range(n_classes)]


def _make(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    class_names: list[str],
    params: dict,
    rng: np.random.Generator,
) -> Dataset:
    """Split the points, convert them to tensors and wrap them in a ``Dataset``."""
    x_tr, y_tr, x_va, y_va = stratified_split(
        x.astype(np.float32), y.astype(np.int64), params["val_fraction"], rng
    )
    return Dataset(
        name=name,
        kind="plane",
        x_train=torch.from_numpy(x_tr),
        y_train=torch.from_numpy(y_tr),
        x_val=torch.from_numpy(x_va),
        y_val=torch.from_numpy(y_va),
        class_names=class_names,
        params=params,
    )


def spiral(
    n_samples: int = 1000, noise: float = 0.2, val_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Three interleaved spiral arms, one class per arm; ``noise`` is angular jitter in radians."""
    params = {"n_samples": int(n_samples), "noise": float(noise),
              "val_fraction": float(val_fraction), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    n_arms = 3
    xs, ys = [], []
    for arm, n in enumerate(_class_sizes(n_samples, n_arms)):
        t = np.linspace(0.0, 1.0, n)
        radius = 0.1 + 1.3 * t
        angle = arm * 2 * np.pi / n_arms + 4.0 * t + rng.normal(0.0, noise, n)
        xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
        ys.append(np.full(n, arm))
    names = [f"arm {i}" for i in range(n_arms)]
    return _make("spiral", np.concatenate(xs), np.concatenate(ys), names, params, rng)


def moons(
    n_samples: int = 1000, noise: float = 0.1, val_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Two interleaving half circles (scikit-learn's ``make_moons``), centred on the origin."""
    from sklearn.datasets import make_moons

    params = {"n_samples": int(n_samples), "noise": float(noise),
              "val_fraction": float(val_fraction), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=int(rng.integers(2**31)))
    x = (x - np.array([0.5, 0.25])) * np.array([0.9, 1.1])
    return _make("moons", x, y, ["upper", "lower"], params, rng)


def circles(
    n_samples: int = 1000, noise: float = 0.05, val_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """A small circle inside a large one (scikit-learn's ``make_circles``), outer radius 1.2."""
    from sklearn.datasets import make_circles

    params = {"n_samples": int(n_samples), "noise": float(noise),
              "val_fraction": float(val_fraction), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    x, y = make_circles(
        n_samples=n_samples, noise=noise, factor=0.5, random_state=int(rng.integers(2**31))
    )
    return _make("circles", 1.2 * x, y, ["outer", "inner"], params, rng)


def xor(
    n_samples: int = 1000, noise: float = 0.1, val_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Uniform points in [-1.2, 1.2]², labelled by whether x and y share a sign.

    ``noise`` is the standard deviation of gaussian jitter added after labelling.
    """
    params = {"n_samples": int(n_samples), "noise": float(noise),
              "val_fraction": float(val_fraction), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.2, 1.2, size=(n_samples, 2))
    y = (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int64)
    x = x + rng.normal(0.0, noise, size=x.shape)
    return _make("xor", x, y, ["same sign", "opposite sign"], params, rng)


def blobs(
    n_samples: int = 1000,
    n_classes: int = 4,
    noise: float = 0.25,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Gaussian blobs of standard deviation ``noise`` centred evenly on a circle of radius 0.8."""
    params = {"n_samples": int(n_samples), "n_classes": int(n_classes), "noise": float(noise),
              "val_fraction": float(val_fraction), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 2 * np.pi)
    xs, ys = [], []
    for k, n in enumerate(_class_sizes(n_samples, n_classes)):
        angle = phase + 2 * np.pi * k / n_classes
        centre = 0.8 * np.array([np.cos(angle), np.sin(angle)])
        xs.append(centre + rng.normal(0.0, noise, size=(n, 2)))
        ys.append(np.full(n, k))
    names = [f"blob {string.ascii_uppercase[k]}" for k in range(n_classes)]
    return _make("blobs", np.concatenate(xs), np.concatenate(ys), names, params, rng)
