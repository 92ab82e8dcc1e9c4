"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images that ship with the package."""
from __future__ import annotations

import functools

import numpy as np
import torch

from .base import Dataset
from .toy import stratified_split


@functools.cache
def _load() -> tuple[np.ndarray, np.ndarray]:
    """The raw digit images scaled to [0, 1], shape (1797, 1, 8, 8), and their int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    return images, bunch.target.astype(np.int64)


def digits(upscale: int = 1, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The 8x8 digits as (N, 1, 8*upscale, 8*upscale) images in [0, 1], split per class at random.

    ``upscale`` > 1 enlarges the images with bilinear interpolation, e.g. 4 gives 32x32.
    """
    params = {"upscale": int(upscale), "val_fraction": float(val_fraction), "seed": int(seed)}
    images, labels = _load()
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_va, y_va = stratified_split(images, labels, val_fraction, rng)
    x_train, x_val = torch.from_numpy(x_tr), torch.from_numpy(x_va)
    if upscale > 1:
        x_train, x_val = (
            torch.nn.functional.interpolate(x, scale_factor=upscale, mode="bilinear",
                                            align_corners=False).clamp_(0.0, 1.0)
            for x in (x_train, x_val)
        )
    return Dataset(
        name="digits",
        kind="image",
        x_train=x_train,
        y_train=torch.from_numpy(y_tr),
        x_val=x_val,
        y_val=torch.from_numpy(y_va),
        class_names=[str(i) for i in range(10)],
        params=params,
    )
