"""Built-in datasets: shapes, dtypes, ranges, determinism, parameter round trips and validation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visualizer.engine.data import DATASETS, Dataset, dataset_names, make_dataset

PLANE = ["spiral", "moons", "circles", "xor", "blobs"]
IMAGE = ["shapes", "digits"]
# Small but valid sizes so the whole file stays fast.
SMALL: dict[str, dict] = {
    **{name: {"n_samples": 300} for name in PLANE},
    "shapes": {"n_train": 320, "n_val": 160},
    "digits": {},
}


def test_registry_lists_every_dataset() -> None:
    sequence = ["copy", "reverse", "sort", "brackets", "parity", "text"]
    assert dataset_names() == PLANE + IMAGE + sequence
    assert set(DATASETS) == set(PLANE + IMAGE + sequence)


@pytest.mark.parametrize("name", PLANE + IMAGE)
def test_shapes_dtypes_ranges_and_class_coverage(name: str) -> None:
    ds = make_dataset(name, **SMALL[name])
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.x_train.dtype == ds.x_val.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_val.dtype == torch.int64
    assert ds.x_train.shape[1:] == ds.x_val.shape[1:]
    assert len(ds.x_train) == len(ds.y_train) and len(ds.x_val) == len(ds.y_val)
    assert len(ds.x_val) < len(ds.x_train)
    for x in (ds.x_train, ds.x_val):
        assert torch.isfinite(x).all()
    if name in PLANE:
        assert ds.kind == "plane" and ds.input_shape == (2,)
        assert ds.x_train.abs().max() < 2.0
        assert ds.x_train.abs().max() > 0.8  # spread over the plot, not squashed near 0
    else:
        assert ds.kind == "image" and len(ds.input_shape) == 3
        assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    for y in (ds.y_train, ds.y_val):
        assert set(y.tolist()) == set(range(ds.num_classes))
    assert len(set(ds.class_names)) == ds.num_classes
    json.dumps(ds.describe())  # checkpoint metadata must be JSON-serialisable


@pytest.mark.parametrize("name", PLANE + IMAGE)
def test_seed_determinism_and_param_round_trip(name: str) -> None:
    a = make_dataset(name, **SMALL[name], seed=1)
    b = make_dataset(name, **SMALL[name], seed=1)
    c = make_dataset(name, **SMALL[name], seed=2)
    rebuilt = make_dataset(a.name, **a.params)
    for other in (b, rebuilt):
        for field in ("x_train", "y_train", "x_val", "y_val"):
            assert torch.equal(getattr(a, field), getattr(other, field)), field
        assert other.class_names == a.class_names
    assert not torch.equal(a.x_train, c.x_train)


def test_params_record_defaults() -> None:
    ds = make_dataset("spiral")
    assert ds.params == {"n_samples": 1000, "noise": 0.2, "val_fraction": 0.2, "seed": 0}
    assert len(ds.x_train) + len(ds.x_val) == 1000
    assert ds.num_classes == 3


@pytest.mark.parametrize("n_classes", [2, 4, 7])
def test_blobs_class_count(n_classes: int) -> None:
    ds = make_dataset("blobs", n_classes=n_classes)
    assert ds.num_classes == n_classes
    assert set(ds.y_val.tolist()) == set(range(n_classes))


def test_toy_val_fraction() -> None:
    ds = make_dataset("moons", n_samples=500, val_fraction=0.3)
    assert len(ds.x_val) == 150 and len(ds.x_train) == 350


def test_digits_full_set_and_upscale() -> None:
    ds = make_dataset("digits")
    assert ds.input_shape == (1, 8, 8)
    assert len(ds.x_train) + len(ds.x_val) == 1797
    assert ds.class_names == [str(i) for i in range(10)]
    big = make_dataset("digits", upscale=4)
    assert big.input_shape == (1, 32, 32)
    assert big.x_train.min() >= 0.0 and big.x_train.max() <= 1.0
    assert torch.equal(big.y_train, ds.y_train)  # upscaling does not change the split
    small_again = torch.nn.functional.avg_pool2d(big.x_train[:5], 4)
    assert (small_again - ds.x_train[:5]).abs().mean() < 0.1


def test_shapes_defaults_are_balanced() -> None:
    ds = make_dataset("shapes")
    assert ds.x_train.shape == (6000, 3, 32, 32) and ds.x_val.shape == (1000, 3, 32, 32)
    k = ds.num_classes
    assert k >= 6
    assert {"circle", "square", "triangle", "star", "cross", "ring"} <= set(ds.class_names)
    assert torch.bincount(ds.y_train, minlength=k).tolist() == [6000 // k] * k
    assert torch.bincount(ds.y_val, minlength=k).tolist() == [1000 // k] * k


def test_shapes_mean_colour_carries_no_class_information() -> None:
    from sklearn.linear_model import LogisticRegression

    ds = make_dataset("shapes", n_train=2000, n_val=800, seed=3)
    features = [ds.x_train.mean(dim=(2, 3)).numpy(), ds.x_val.mean(dim=(2, 3)).numpy()]
    model = LogisticRegression(max_iter=2000).fit(features[0], ds.y_train.numpy())
    accuracy = model.score(features[1], ds.y_val.numpy())
    assert accuracy < 1.0 / ds.num_classes + 0.07


def test_shapes_images_vary_in_colour_and_content() -> None:
    ds = make_dataset("shapes", n_train=200, n_val=80)
    means = ds.x_train.mean(dim=(2, 3))
    assert means.std(dim=0).min() > 0.1  # colours are random, not one palette
    assert ds.x_train.std(dim=(1, 2, 3)).min() > 0.02  # every image shows something


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("spiral", {"n_samples": 5}, "n_samples"),
        ("moons", {"noise": -0.1}, "noise"),
        ("circles", {"val_fraction": 0.0}, "val_fraction"),
        ("xor", {"val_fraction": 1.5}, "val_fraction"),
        ("blobs", {"n_classes": 1}, "n_classes"),
        ("blobs", {"n_samples": 10, "n_classes": 8}, "n_classes"),
        ("digits", {"upscale": 0}, "upscale"),
        ("digits", {"upscale": 2.5}, "upscale"),
        ("shapes", {"n_train": 0}, "n_train"),
        ("shapes", {"n_val": -3}, "n_val"),
        ("spiral", {"seed": -1}, "seed"),
        ("spiral", {"seed": "zero"}, "seed"),
        ("spiral", {"noise": float("nan")}, "noise"),
        ("spiral", {"colour": "red"}, "colour"),
        ("shapes", {"val_fraction": 0.2}, "val_fraction"),
    ],
)
def test_bad_parameters_raise_readable_errors(name: str, params: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        make_dataset(name, **params)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        make_dataset("mnist")
    message = str(info.value)
    assert "mnist" in message
    for name in PLANE + IMAGE:
        assert name in message


def test_generation_uses_no_global_rng_state() -> None:
    torch.manual_seed(123)
    np.random.seed(123)
    before = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(123)
    np.random.seed(123)
    make_dataset("spiral", n_samples=100)
    make_dataset("shapes", n_train=16, n_val=16)
    after = (torch.rand(3), np.random.rand(3))
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_whole_number_floats_are_accepted_as_integers() -> None:
    ds = make_dataset("blobs", n_samples=200.0, n_classes=3.0, seed=np.int64(4))
    assert ds.params == {"n_samples": 200, "n_classes": 3, "noise": 0.25,
                         "val_fraction": 0.2, "seed": 4}
    assert all(type(v) in (int, float) for v in ds.params.values())
