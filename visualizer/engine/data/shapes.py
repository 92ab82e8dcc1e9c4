"""Procedurally generated 32x32 RGB shape images for showing hierarchical feature learning.

Each image holds one shape at a random position, scale and rotation, filled with a random
colour and texture, on a darker noisy textured background. Colours, textures, size and position are
drawn independently of the class, so only the outline gives the class away: raw-pixel linear
models do little better than chance while a small CNN learns the set in a few hundred steps.
Shapes are rasterised with vectorised signed-distance functions and one-pixel smooth edges.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import torch

from .base import Dataset

SIZE = 32
CLASS_NAMES = ["circle", "square", "triangle", "star", "cross", "ring", "arrow", "crescent"]

_CHUNK = 1024  # images rasterised at once; bounds peak memory at a few tens of MB
# Difficulty knobs, tuned so a small CNN learns the set in ~600 Adam steps while a
# logistic regression on raw pixels stays near chance.
_RADIUS = (0.2, 0.42)  # shape radius as a fraction of the width, before area normalisation
_AREA = 1.8  # every shape is scaled to this area at radius 1 so mean colour tells nothing
_MIN_CONTRAST = 0.4  # least gap in mean channel value between foreground and background
_TEXTURE_CONTRAST = 0.3  # largest per-channel offset of a texture's second colour
_NOISE = (0.02, 0.08)  # range of the per-image pixel noise standard deviation


def _polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(u, v), np.arctan2(v, u)


def _fold(phi: np.ndarray, n: int) -> np.ndarray:
    """Fold an angle into [0, pi/n] using the n-fold mirror symmetry around angle 0."""
    sector = 2 * np.pi / n
    return np.abs(np.mod(phi + sector / 2, sector) - sector / 2)


def _regular_polygon(u: np.ndarray, v: np.ndarray, n: int, radius: float) -> np.ndarray:
    """Signed distance (exact near the edges) to a regular n-gon with a vertex at angle pi/n."""
    r, phi = _polar(u, v)
    return r * np.cos(_fold(phi, n)) - radius * np.cos(np.pi / n)


def _sd_circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - 0.9


def _sd_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - 0.78


def _sd_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _regular_polygon(u, v, 3, 1.1)


def _sd_star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r, phi = _polar(u, v)
    a = _fold(phi, 5)  # tip of the arm at angle 0, inner corner at pi/5
    qx, qy = r * np.cos(a), r * np.sin(a)
    tip = np.array([1.05, 0.0])
    inner = 0.5 * np.array([np.cos(np.pi / 5), np.sin(np.pi / 5)])
    edge = inner - tip
    normal = np.array([edge[1], -edge[0]]) / np.hypot(*edge)  # points away from the centre
    return (qx - tip[0]) * normal[0] + (qy - tip[1]) * normal[1]


def _sd_cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    arm, half_width = 0.95, 0.32
    return np.minimum(np.maximum(au - arm, av - half_width), np.maximum(au - half_width, av - arm))


def _sd_ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(u, v) - 0.7) - 0.25


def _sd_arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    av = np.abs(v)
    # Head: triangle with its tip at (1, 0) and barbs at (0.1, +-0.75); shaft: a bar behind it.
    nu, nv = np.array([0.75, 0.9]) / np.hypot(0.75, 0.9)  # outward normal of the slanted edges
    head = np.maximum(0.1 - u, (u - 1.0) * nu + av * nv)
    shaft = np.maximum(np.abs(u + 0.4) - 0.55, av - 0.22)
    return np.minimum(head, shaft)


def _sd_crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    outer = np.hypot(u + 0.1, v) - 0.95
    bite = np.hypot(u - 0.4, v) - 0.75
    return np.maximum(outer, -bite)


_SDF: list[Callable[[np.ndarray, np.ndarray], np.ndarray]] = [
    _sd_circle, _sd_square, _sd_triangle, _sd_star, _sd_cross, _sd_ring, _sd_arrow, _sd_crescent,
]


@functools.cache
def _area_scales() -> np.ndarray:
    """Per-class factors that give every shape the area ``_AREA`` at radius 1."""
    step = 3.2 / 400
    grid = (np.arange(400, dtype=np.float32) + 0.5) * step - 1.6
    u, v = np.meshgrid(grid, grid)
    areas = np.array([(sdf(u, v) < 0).sum() * step**2 for sdf in _SDF])
    return np.sqrt(_AREA / areas).astype(np.float32)


def _texture(
    kind: np.ndarray, angle: np.ndarray, period: np.ndarray, phase: np.ndarray,
    blotch: np.ndarray, xx: np.ndarray, yy: np.ndarray,
) -> np.ndarray:
    """Per-image texture mix weights in [0, 1], shape (B, H, W), for the texture ids in ``kind``."""
    out = np.zeros(xx.shape, dtype=np.float32)
    periodic = (kind >= 1) & (kind <= 3)
    if periodic.any():
        k = kind[periodic]
        c, s = np.cos(angle[periodic])[:, None, None], np.sin(angle[periodic])[:, None, None]
        f = (2 * np.pi / period[periodic])[:, None, None]
        x, y = xx[: len(k)], yy[: len(k)]  # the grids are the same for every image
        a = (x * c + y * s) * f + phase[periodic, 0, None, None]
        b = (y * c - x * s) * f + phase[periodic, 1, None, None]
        sa = np.sin(a)
        t = np.empty_like(a)
        m = k == 1  # stripes
        t[m] = 2.5 * sa[m] + 0.5
        m = k == 2  # dots
        t[m] = 3.0 * (np.cos(a[m]) + np.cos(b[m]) - 0.6)
        m = k == 3  # checks
        t[m] = 4.0 * sa[m] * np.sin(b[m]) + 0.5
        out[periodic] = np.clip(t, 0, 1)
    m = kind == 4
    if m.any():  # smooth low-frequency noise: a 5x5 random grid upsampled bilinearly
        grid = torch.from_numpy(blotch[m])[:, None]
        up = torch.nn.functional.interpolate(grid, size=xx.shape[1:], mode="bilinear",
                                             align_corners=False)
        out[m] = up[:, 0].numpy()
    return out


def _light_on_dark(
    rng: np.random.Generator, n: int, min_gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` (foreground, background) uniform RGB pairs, the foreground's mean channel
    value at least ``min_gap`` above the background's.

    A fixed contrast polarity spares the network learning every edge detector twice, which
    otherwise stalls training for hundreds of steps; hue and brightness stay random.
    """
    fg = rng.uniform(0, 1, (n, 3))
    bg = rng.uniform(0, 1, (n, 3))
    while True:
        swap = fg.mean(1) < bg.mean(1)
        fg[swap], bg[swap] = bg[swap], fg[swap]
        bad = fg.mean(1) - bg.mean(1) < min_gap
        if not bad.any():
            return fg, bg
        fg[bad] = rng.uniform(0, 1, (bad.sum(), 3))
        bg[bad] = rng.uniform(0, 1, (bad.sum(), 3))


def _render(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rasterise one image per label; returns float32 of shape (N, 3, SIZE, SIZE) in [0, 1]."""
    n = len(labels)
    f32 = np.float32
    # Shape pose: the margin keeps the shape mostly inside and does not depend on the class;
    # the radius is then rescaled per class so that all classes cover the same area.
    radius = rng.uniform(*_RADIUS, n).astype(f32) * SIZE
    margin = 0.9 * radius
    radius *= _area_scales()[labels]
    cx = rng.uniform(margin, SIZE - margin).astype(f32)
    cy = rng.uniform(margin, SIZE - margin).astype(f32)
    rot = rng.uniform(0, 2 * np.pi, n)
    cos, sin = np.cos(rot).astype(f32), np.sin(rot).astype(f32)
    # Colours: the shape is lighter than the background; each texture mixes its base colour
    # with a second one at random contrast.
    fg, bg = _light_on_dark(rng, n, _MIN_CONTRAST)
    colours = {}
    for layer, base in (("fg", fg), ("bg", bg)):
        offset = rng.uniform(-_TEXTURE_CONTRAST, _TEXTURE_CONTRAST, (n, 3))
        colours[layer] = (base.astype(f32), np.clip(base + offset, 0, 1).astype(f32))
    textures = {
        layer: (
            rng.integers(0, n_kinds, n),
            rng.uniform(0, np.pi, n).astype(f32),
            rng.uniform(3.0, 7.0, n).astype(f32),
            rng.uniform(0, 2 * np.pi, (n, 2)).astype(f32),
            rng.uniform(0, 1, (n, 5, 5)).astype(f32),
        )
        for layer, n_kinds in (("fg", 4), ("bg", 5))  # the foreground has no blotches
    }
    noise_std = rng.uniform(*_NOISE, n).astype(f32)

    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(f32) + f32(0.5)
    images = np.empty((n, 3, SIZE, SIZE), dtype=f32)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        b = sl.stop - sl.start
        xx = np.broadcast_to(xs, (b, SIZE, SIZE))
        yy = np.broadcast_to(ys, (b, SIZE, SIZE))
        # Shape-local coordinates: undo translation, rotation and scale.
        dx = xx - cx[sl, None, None]
        dy = yy - cy[sl, None, None]
        c, s, r = cos[sl, None, None], sin[sl, None, None], radius[sl, None, None]
        u = (dx * c + dy * s) / r
        v = (dy * c - dx * s) / r
        dist = np.empty((b, SIZE, SIZE), dtype=f32)
        for k, sdf in enumerate(_SDF):
            m = labels[sl] == k
            if m.any():
                dist[m] = sdf(u[m], v[m])
        coverage = np.clip(0.5 - dist * r, 0, 1)[:, None]  # distance in pixels -> 1 px soft edge

        layers = {}
        for layer, (c1, c2) in colours.items():
            t = _texture(*(p[sl] for p in textures[layer]), xx, yy)[:, None]
            c1, c2 = c1[sl, :, None, None], c2[sl, :, None, None]
            layers[layer] = c1 + t * (c2 - c1)
        img = layers["bg"] + coverage * (layers["fg"] - layers["bg"])
        img += rng.standard_normal(img.shape, dtype=f32) * noise_std[sl, None, None, None]
        images[sl] = np.clip(img, 0, 1)
    return images


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Labels with class counts differing by at most one, in random order."""
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def shapes(n_train: int = 6000, n_val: int = 1000, seed: int = 0) -> Dataset:
    """32x32 RGB images of eight shape classes with random pose, colours and textures.

    Classes are balanced in both splits; only the outline of the shape tells them apart.
    """
    params = {"n_train": int(n_train), "n_val": int(n_val), "seed": int(seed)}
    rng = np.random.default_rng(seed)
    k = len(CLASS_NAMES)
    y_train = _balanced_labels(n_train, k, rng)
    y_val = _balanced_labels(n_val, k, rng)
    return Dataset(
        name="shapes",
        kind="image",
        x_train=torch.from_numpy(_render(y_train, rng)),
        y_train=torch.from_numpy(y_train),
        x_val=torch.from_numpy(_render(y_val, rng)),
        y_val=torch.from_numpy(y_val),
        class_names=list(CLASS_NAMES),
        params=params,
    )
