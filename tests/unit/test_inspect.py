"""Inspect mode and fine-tuning on a loaded model: no training until asked, frozen layers stay
as loaded, and the per-layer movement equals ||W - W_loaded|| / ||W_loaded|| computed here."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from visualizer.capture.inspect import dataset_for, inspect_session
from visualizer.capture.session import CaptureSettings
from visualizer.engine.loading import load_model
from visualizer.examples import example_models

torch.set_num_threads(1)
FAST = CaptureSettings(max_rate_hz=1e9, budget=1.0, probe_size=8, val_interval_s=0.0)


def test_fine_tuning_moves_only_the_layers_that_are_not_frozen():
    path = example_models()["cnn-digits"]
    loaded = load_model(path)
    reference = {k: v.clone() for k, v in load_model(path).module.state_dict().items()}
    session = inspect_session(loaded, freeze=["block1.conv", "block2.conv"], settings=FAST)
    first = session.capture_now()
    assert session.trainer.step_count == 0 and all(v == 0.0 for v in first.info["moved"].values())
    session.trainer.config.lr = 1e-2
    session.trainer.optimizer.param_groups[0]["lr"] = 1e-2
    session.run(5)
    frame = session.capture_now()
    state = loaded.module.state_dict()
    for name in ("block1.conv", "block2.conv"):
        assert torch.equal(state[f"{name}.weight"], reference[f"{name}.weight"])
        assert frame.info["moved"][name] == 0.0
    assert frame.info["frozen"] == ["block1.conv", "block2.conv"]
    w, b = state["head.weight"] - reference["head.weight"], state["head.bias"] - reference["head.bias"]
    expected = ((w.pow(2).sum() + b.pow(2).sum()) / (reference["head.weight"].pow(2).sum()
                                                     + reference["head.bias"].pow(2).sum())).sqrt().item()
    assert expected > 0 and frame.info["moved"]["head"] == pytest.approx(expected, rel=1e-4)


def test_a_live_module_finds_a_dataset_that_fits_it():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert dataset_for(model).name == "digits"
    with pytest.raises(ValueError, match="no built-in dataset fits"):
        dataset_for(nn.Linear(7, 3))
    with pytest.raises(ValueError, match="no such layer"):
        inspect_session(model, freeze=["nope"])


def test_gradients_for_the_probe_inputs_without_a_step():
    import torch.nn.functional as F

    loaded = load_model(example_models()["cnn-digits"])
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    session = inspect_session(loaded, settings=FAST)
    frame = session.capture_gradients()
    assert session.trainer.step_count == 0 and frame.step == 0
    assert all(torch.equal(v, before[k]) for k, v in loaded.module.state_dict().items())
    assert all(p.grad is None for p in loaded.module.parameters())
    reference = load_model(example_models()["cnn-digits"]).module.eval()  # by hand, on a fresh copy
    F.cross_entropy(reference(session.probe_x), session.probe_y).backward()
    for name in ("block1.conv", "head"):
        module = dict(reference.named_modules())[name]
        expected = torch.cat([p.grad.flatten() for p in module.parameters(recurse=False)]).norm().item()
        assert frame.gradients[name].grad_norm == pytest.approx(expected, rel=1e-4)


def test_gradients_without_a_step_for_a_per_token_model():
    import torch.nn.functional as F

    path = example_models()["transformer-reverse"]
    session = inspect_session(load_model(path), settings=FAST)
    frame = session.capture_gradients()  # logits (N, T, K) against labels (N, T)
    reference = load_model(path).module.eval()
    logits = reference(session.probe_x)
    F.cross_entropy(logits.flatten(0, 1), session.probe_y.flatten()).backward()
    expected = torch.cat([p.grad.flatten() for p in reference.head.parameters()]).norm().item()
    assert frame.gradients["head"].grad_norm == pytest.approx(expected, rel=1e-4)
