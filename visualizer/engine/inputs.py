"""Inputs from files: images (PNG/JPEG) resized to a model's input, and ``.npy`` arrays."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


# Pillow's modes for grey images deeper than 8 bits, and the value that is white in each
HIGH_DEPTH_GREY = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


class InputError(ValueError):
    """An input file that cannot be used; the message says why in one line."""


def read_image(path: str | os.PathLike[str], input_shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as a (1, C, H, W) float tensor in [0, 1], resized to ``input_shape`` (C, H, W).

    One channel: grey levels; three: RGB. Raises InputError for a missing, corrupt or
    unsupported file, or a model input that is not an image.
    """
    path = Path(path)
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise InputError(f"an image cannot be fed to a model whose input shape is {tuple(input_shape)}")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise InputError("reading images needs Pillow: pip install pillow") from None
    channels, height, width = input_shape
    try:
        with Image.open(path) as img:
            if img.mode in HIGH_DEPTH_GREY:  # 16-bit grey: Pillow's convert("L") clips it instead of scaling
                grey = np.asarray(img, dtype=np.float32) / HIGH_DEPTH_GREY[img.mode]
                grey = Image.fromarray(np.clip(grey, 0.0, 1.0), "F").resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(grey, dtype=np.float32)
                if channels == 3:
                    array = np.repeat(array[..., None], 3, axis=2)
            else:
                img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(img, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputError(f"cannot read {path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path.name} is not a readable PNG or JPEG image ({exc})") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))[None]  # a writable copy


def read_input_file(path: str | os.PathLike[str], input_shape: tuple[int, ...] | None) -> torch.Tensor:
    """An image, or a ``.npy`` array of one sample or a batch (no pickles), as model inputs."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"cannot read {path}: no such file") from None
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path.name} is not a readable .npy array ({exc})") from None
        if array.dtype.kind not in "iuf":
            raise InputError(f"{path.name} holds {array.dtype} values; inputs must be numbers")
        # whole numbers stay whole (token ids for an embedding); anything else becomes float32
        x = torch.from_numpy(np.asarray(array, dtype=np.int64 if array.dtype.kind in "iu" else np.float32))
        if input_shape is not None and tuple(x.shape) == tuple(input_shape):
            x = x[None]
        return x
    if input_shape is None:
        raise InputError("the model's input shape is unknown, so an image cannot be resized for it; give --input-shape")
    return read_image(path, tuple(input_shape))
