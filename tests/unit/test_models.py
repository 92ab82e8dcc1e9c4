"""Unit tests for the built-in models (CPU, fast)."""
from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from visualizer.engine.models import (
    MODELS,
    Add,
    LayerSummary,
    build_model,
    count_parameters,
    model_options,
    parameter_summary,
    set_dropout,
)
from visualizer.engine.models.init import expected_std, init_weights

PLANE = (2,)
SHAPES_RGB = (3, 32, 32)
DIGITS = (1, 8, 8)

CASES = [
    ("mlp", PLANE),
    ("mlp", SHAPES_RGB),
    ("mlp", DIGITS),
    ("cnn", SHAPES_RGB),
    ("cnn", DIGITS),
    ("cnn", (1, 16, 16)),
    ("resnet", SHAPES_RGB),
    ("resnet", DIGITS),
]

NAME_RE = re.compile(r"^[a-z]+[a-z_]*\d*(\.[a-z]+[a-z_]*\d*)*$")


@pytest.fixture(autouse=True)
def _single_thread():
    """These models are tiny: one thread is faster and robust to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if n and not any(m.children())]


def hook_calls(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of leaf modules in the order their forward hooks fire."""
    calls: list[str] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, _o, name=name: calls.append(name))
        for name, m in leaves(model)
    ]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


# --- building and naming -------------------------------------------------------------


@pytest.mark.parametrize("arch,shape", CASES)
def test_builds_and_gives_logits(arch: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(arch, shape, 7)
    out = model(torch.rand(4, *shape))
    assert out.shape == (4, 7)
    assert torch.isfinite(out).all()
    model.eval()
    assert model(torch.rand(1, *shape)).shape == (1, 7)


@pytest.mark.parametrize("arch,shape", CASES)
def test_names_unique_readable_and_in_forward_order(arch: str, shape: tuple[int, ...]) -> None:
    model = build_model(arch, shape, 5)
    names = [n for n, _ in leaves(model)]
    assert len(names) == len(set(names))
    for name in names:
        assert NAME_RE.match(name), name
    calls = hook_calls(model, torch.rand(3, *shape))
    # every leaf runs exactly once, in registration order
    assert calls == names


@pytest.mark.parametrize(
    "arch,shape,options",
    [
        ("mlp", PLANE, {"depth": 4, "residual": True, "batch_norm": True, "dropout": 0.2}),
        ("mlp", DIGITS, {"depth": 2, "activation": "tanh"}),
        ("cnn", SHAPES_RGB, {"batch_norm": True, "activation": "gelu", "kernel_size": 5}),
        ("resnet", SHAPES_RGB, {"blocks_per_stage": 2, "activation": "sigmoid"}),
        ("resnet", DIGITS, {"residual": False, "batch_norm": False}),
    ],
)
def test_variants_forward_order_and_single_use(arch: str, shape, options) -> None:
    model = build_model(arch, shape, 4, **options)
    calls = hook_calls(model, torch.rand(3, *shape))
    assert calls == [n for n, _ in leaves(model)]
    ids = [id(m) for _, m in leaves(model)]
    assert len(ids) == len(set(ids))


def test_expected_layer_names() -> None:
    mlp = build_model("mlp", PLANE, 3, depth=2, batch_norm=True, residual=True)
    assert [n for n, _ in leaves(mlp)] == [
        "hidden1.linear", "hidden1.norm", "hidden1.relu", "hidden1.dropout",
        "hidden2.linear", "hidden2.norm", "hidden2.relu", "hidden2.dropout", "hidden2.add",
        "head",
    ]  # fmt: skip
    img_mlp = build_model("mlp", DIGITS, 3, depth=1)
    assert [n for n, _ in leaves(img_mlp)][0] == "flatten"

    cnn = build_model("cnn", DIGITS, 10, activation="tanh")
    names = [n for n, _ in leaves(cnn)]
    assert names[:4] == ["block1.conv", "block1.tanh", "block1.pool", "block2.conv"]
    assert "block3.pool" not in names  # 8x8 -> 4 -> 2; a third pool would give 1x1
    assert names[-5:] == ["flatten", "fc.linear", "fc.tanh", "fc.dropout", "head"]

    res = build_model("resnet", SHAPES_RGB, 10)
    names = [n for n, _ in leaves(res)]
    assert names[:3] == ["stem.conv", "stem.norm", "stem.relu"]
    assert names[3:10] == [
        "stage1.block1.conv1", "stage1.block1.norm1", "stage1.block1.relu1",
        "stage1.block1.conv2", "stage1.block1.norm2", "stage1.block1.add", "stage1.block1.relu2",
    ]  # fmt: skip
    assert "stage2.block1.shortcut" in names and "stage1.block1.shortcut" not in names
    assert names[-3:] == ["pool", "flatten", "head"]


@pytest.mark.parametrize("arch,shape", CASES)
def test_no_inplace_and_backward_hooks_work(arch: str, shape) -> None:
    model = build_model(arch, shape, 3, **({"dropout": 0.3} if arch != "resnet" else {}))
    for _, m in leaves(model):
        assert not getattr(m, "inplace", False)
    seen: list[str] = []
    handles = [
        m.register_full_backward_hook(lambda _m, _gi, _go, name=name: seen.append(name))
        for name, m in leaves(model)
    ]
    try:
        model(torch.rand(4, *shape, requires_grad=True)).sum().backward()
    finally:
        for h in handles:
            h.remove()
    assert seen and seen[0] == "head"


# --- switches ------------------------------------------------------------------------


def test_set_dropout() -> None:
    mlp = build_model("mlp", PLANE, 2, depth=3)
    assert mlp.spec["options"]["dropout"] == 0.0
    assert set_dropout(mlp, 0.4) == 3
    assert [m.p for m in mlp.modules() if isinstance(m, nn.Dropout)] == [0.4] * 3
    assert mlp.spec["options"]["dropout"] == 0.4
    cnn = build_model("cnn", SHAPES_RGB, 2)
    assert set_dropout(cnn, 0.5) == 1 and cnn.fc.dropout.p == 0.5
    assert set_dropout(build_model("resnet", DIGITS, 2), 0.5) == 0
    with pytest.raises(ValueError, match="dropout"):
        set_dropout(mlp, 1.5)


def test_residual_switch() -> None:
    on = build_model("mlp", PLANE, 2, depth=4, residual=True)
    assert sum(isinstance(m, Add) for m in on.modules()) == 3
    off = build_model("mlp", PLANE, 2, depth=4, residual=False)
    assert not any(isinstance(m, Add) for m in off.modules())
    res_on = build_model("resnet", DIGITS, 2, blocks_per_stage=2)
    assert sum(isinstance(m, Add) for m in res_on.modules()) == 6
    res_off = build_model("resnet", DIGITS, 2, residual=False)
    names = [n for n, _ in res_off.named_modules()]
    assert not any(n.endswith((".add", ".shortcut")) for n in names)
    assert not any(isinstance(m, Add) for m in res_off.modules())


@pytest.mark.parametrize("arch,shape", [("mlp", PLANE), ("cnn", DIGITS), ("resnet", DIGITS)])
def test_batch_norm_switch(arch: str, shape) -> None:
    on = build_model(arch, shape, 2, batch_norm=True)
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in on.modules())
    off = build_model(arch, shape, 2, batch_norm=False)
    assert not any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Identity)) for m in off.modules())
    assert not any(".norm" in n or n.startswith("norm") for n, _ in off.named_modules())


# --- spec and summaries -------------------------------------------------------------


@pytest.mark.parametrize(
    "arch,shape,options",
    [
        ("mlp", PLANE, {}),
        ("mlp", DIGITS, {"depth": 5, "width": 32, "residual": True, "batch_norm": True}),
        ("cnn", SHAPES_RGB, {"channels": (8, 16), "hidden": 64, "dropout": 0.25}),
        ("resnet", SHAPES_RGB, {"widths": [8, 16, 32, 64], "blocks_per_stage": 2}),
        ("resnet", DIGITS, {"residual": False, "batch_norm": False, "init": "xavier"}),
        ("transformer", (8,), {"positions": "sinusoidal", "norm_first": False, "causal": True}),
        ("lstm", (8,), {"num_layers": 2, "per_token": False}),
        ("vit", SHAPES_RGB, {"patch_size": 8, "num_layers": 1}),
    ],
)
def test_spec_round_trip(arch: str, shape, options) -> None:
    model = build_model(arch, shape, 6, **options)
    spec = json.loads(json.dumps(model.spec))
    assert spec["arch"] == arch and spec["input_shape"] == list(shape) and spec["num_classes"] == 6
    assert set(spec["options"]) == set(model_options(arch))
    again = build_model(spec["arch"], spec["input_shape"], spec["num_classes"], **spec["options"])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in again.state_dict().items()}
    assert again.spec == model.spec
    again.load_state_dict(model.state_dict())


def test_model_options_defaults() -> None:
    assert set(MODELS) == {"mlp", "cnn", "resnet", "transformer", "rnn", "lstm", "gru", "vit"}
    assert model_options("mlp") == {
        "depth": 3, "width": 64, "activation": "relu", "batch_norm": False,
        "dropout": 0.0, "residual": False, "init": "auto",
    }  # fmt: skip
    assert model_options("cnn")["channels"] == [16, 32, 64]
    assert model_options("resnet")["batch_norm"] is True


@pytest.mark.parametrize("arch,shape", CASES)
def test_parameter_summary(arch: str, shape) -> None:
    model = build_model(arch, shape, 10)
    model.train()
    summary = parameter_summary(model, shape)
    assert all(isinstance(s, LayerSummary) for s in summary)
    assert [s.name for s in summary] == [n for n, _ in leaves(model)]
    assert summary[-1].name == "head" and summary[-1].output_shape == (10,)
    assert sum(s.num_params for s in summary) == count_parameters(model)
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())
    model.eval()
    parameter_summary(model, shape)
    assert not any(m.training for m in model.modules())


def test_summary_shapes_and_kinds() -> None:
    by_name = {s.name: s for s in parameter_summary(build_model("cnn", SHAPES_RGB, 10), SHAPES_RGB)}
    assert by_name["block1.conv"].kind == "Conv2d"
    assert by_name["block1.conv"].output_shape == (16, 32, 32)
    assert by_name["block1.pool"].output_shape == (16, 16, 16)
    assert by_name["flatten"].output_shape == (64 * 4 * 4,)
    assert by_name["block1.conv"].num_params == 16 * 3 * 9 + 16


# --- initialisation ----------------------------------------------------------------


def test_init_auto_kaiming_for_relu() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", PLANE, 2, depth=2, width=1024, activation="relu")
    assert model.init_scheme == "kaiming"
    w = model.hidden2.linear.weight
    assert w.std().item() == pytest.approx(expected_std("kaiming", 1024, 1024), rel=0.03)
    assert w.std().item() == pytest.approx((2.0 / 1024) ** 0.5, rel=0.03)
    assert torch.count_nonzero(model.hidden2.linear.bias) == 0
    cnn = build_model("cnn", SHAPES_RGB, 2, channels=(64, 128), activation="gelu")
    assert cnn.init_scheme == "kaiming"
    std = cnn.block2.conv.weight.std().item()
    assert std == pytest.approx((2.0 / (64 * 9)) ** 0.5, rel=0.03)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_init_auto_xavier_for_saturating(activation: str) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", PLANE, 2, depth=2, width=1024, activation=activation)
    assert model.init_scheme == "xavier"
    w = model.hidden2.linear.weight
    assert w.std().item() == pytest.approx((2.0 / (1024 + 1024)) ** 0.5, rel=0.03)
    bound = (6.0 / (1024 + 1024)) ** 0.5
    assert w.abs().max().item() <= bound  # uniform, not normal
    assert torch.count_nonzero(model.hidden2.linear.bias) == 0


def test_init_explicit_and_default() -> None:
    torch.manual_seed(0)
    assert build_model("mlp", PLANE, 2, activation="tanh", init="kaiming").init_scheme == "kaiming"
    assert build_model("resnet", DIGITS, 2, init="xavier").init_scheme == "xavier"
    default = build_model("mlp", PLANE, 2, width=256, init="default")
    assert default.init_scheme == "default"
    assert torch.count_nonzero(default.hidden2.linear.bias) > 0  # PyTorch's own init kept
    # PyTorch default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) -> std 1/sqrt(3 fan_in)
    assert default.hidden2.linear.weight.std().item() == pytest.approx((1 / (3 * 256)) ** 0.5, rel=0.05)
    bn = build_model("resnet", DIGITS, 2)
    with torch.no_grad():
        bn.stem.norm.weight.fill_(3.0)
    assert init_weights(bn, "relu") == "kaiming"
    assert torch.all(bn.stem.norm.weight == 1) and torch.all(bn.stem.norm.bias == 0)


def test_kaiming_trains_deep_relu_mlp_on_digits() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = perm[:1400], perm[1400:]

    def val_accuracy(init: str) -> float:
        torch.manual_seed(1)
        model = build_model("mlp", (64,), 10, depth=10, width=64, init=init)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(200):
            idx = train[torch.randint(0, len(train), (128,))]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            return (model(x[val]).argmax(1) == y[val]).float().mean().item()

    kaiming = val_accuracy("auto")
    default = val_accuracy("default")
    assert kaiming >= 0.8
    assert default < kaiming


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch,shape,options,message",
    [
        ("gpt", PLANE, {}, r"unknown architecture 'gpt'.*mlp, cnn, resnet, transformer, rnn, lstm, gru, vit"),
        ("vit", PLANE, {}, r"vit is an image model"),
        ("transformer", (3, 8, 8), {}, r"transformer takes token sequences of shape \(T,\)"),
        ("transformer", (8,), {"d_model": 10, "num_heads": 4}, r"d_model \(10\) must be a multiple of num_heads"),
        ("transformer", (8,), {"positions": "rotary"}, r"positions must be one of learned, sinusoidal"),
        ("lstm", (8,), {"hidden_size": 0}, r"hidden_size must be between 1 and 4096"),
        ("mlp", PLANE, {"depht": 3}, r"unknown option.*depht.*valid options: depth, width"),
        ("mlp", PLANE, {"depth": 0}, r"depth must be between 1 and 32"),
        ("mlp", PLANE, {"depth": 33}, r"depth must be between 1 and 32"),
        ("mlp", PLANE, {"depth": 2.5}, r"depth must be an integer"),
        ("mlp", PLANE, {"width": 5000}, r"width must be between 1 and 4096"),
        ("mlp", PLANE, {"activation": "swish"}, r"unknown activation 'swish'.*relu.*tanh"),
        ("mlp", PLANE, {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ("mlp", PLANE, {"residual": "yes"}, r"residual must be true or false"),
        ("mlp", PLANE, {"init": "orthogonal"}, r"unknown init scheme.*kaiming"),
        ("cnn", PLANE, {}, r"cnn is an image model.*point.*'mlp'"),
        ("resnet", PLANE, {}, r"resnet is an image model.*point.*'mlp'"),
        ("cnn", (32, 32), {}, r"\(C, H, W\)"),
        ("cnn", DIGITS, {"channels": []}, r"channels must have 1 to"),
        ("cnn", DIGITS, {"channels": [16, 0]}, r"channels must be between 1 and"),
        ("cnn", DIGITS, {"kernel_size": 4}, r"kernel_size must be odd"),
        ("cnn", DIGITS, {"hidden": 0}, r"hidden must be between"),
        ("resnet", DIGITS, {"widths": [8] * 9}, r"widths must have 1 to"),
        ("resnet", DIGITS, {"blocks_per_stage": 0}, r"blocks_per_stage must be between"),
        ("resnet", DIGITS, {"depth": 3}, r"unknown option.*depth.*valid options: widths"),
        ("mlp", (0,), {}, r"input_shape"),
    ],
)
def test_bad_options_raise_readable_errors(arch, shape, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(arch, shape, 3, **options)


def test_bad_num_classes_and_arch_in_model_options() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", PLANE, 1)
    with pytest.raises(ValueError, match="valid architectures"):
        model_options("vgg")
