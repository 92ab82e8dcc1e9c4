"""Every loader in this package, fed damaged files: one clear line each, never a crash."""
import json

import pytest
import torch

from tests.fuzz import expect_clean_failure, file_corruptions, json_corruptions
from visualizer.engine.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from visualizer.engine.run import RunSpec, build_trainer

SPEC = {"model": "mlp", "data": "xor", "model_options": {"depth": 2, "width": 8}, "data_options": {"n_samples": 200},
        "config": {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "seed": 0}, "device": "cpu"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    trainer = build_trainer(RunSpec.from_dict(SPEC))
    path = tmp_path_factory.mktemp("ckpt") / "good.safetensors"
    save_checkpoint(path, trainer.model, {"model": trainer.model.spec, "data": trainer.dataset.describe()})
    return path


def test_damaged_checkpoints_give_one_line_errors(checkpoint, tmp_path):
    good = checkpoint.read_bytes()
    failures = 0
    for label, data in file_corruptions(good):
        path = tmp_path / "damaged.safetensors"
        path.write_bytes(data)
        message = expect_clean_failure(lambda: load_checkpoint(path), CheckpointError)
        failures += message is not None
        if message is None:  # a flip in the weights themselves can still load: then it must be usable
            model, _ = load_checkpoint(path)
            assert model(torch.zeros(1, 2)).shape == (1, 2), label
    assert failures >= 10  # truncations, random bytes, empty: all rejected


def test_damaged_or_wrongly_shaped_descriptions_give_one_line_errors(checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(checkpoint))
    bare = tmp_path / "bare.safetensors"
    save_file(tensors, str(bare))  # no embedded description: the sidecar JSON is read
    desc = json.loads(checkpoint.with_suffix(".json").read_text())
    for label, text in [*json_corruptions(desc), *(("model " + l, json.dumps({**desc, "model": json.loads(t)}))
                                                   for l, t in json_corruptions(desc["model"]) if _json(t))]:
        bare.with_suffix(".json").write_text(text)
        message = expect_clean_failure(lambda: load_checkpoint(bare), CheckpointError)
        if label.startswith(("invalid", "empty", "top level", "model =")):
            assert message is not None, label  # other fields (format, data) are not needed to load weights
    bare.with_suffix(".json").unlink()
    assert "no description" in expect_clean_failure(lambda: read_checkpoint(bare), CheckpointError)


def _json(text):
    try:
        return isinstance(json.loads(text), (dict, list, str, int, float, type(None)))
    except json.JSONDecodeError:
        return False


def test_wrongly_shaped_run_descriptions_are_refused_with_the_field_named():
    torch.set_num_threads(1)
    for label, text in json_corruptions(SPEC):
        try:
            d = json.loads(text)
        except json.JSONDecodeError:
            continue
        def build():
            build_trainer(RunSpec.from_dict(d))
        message = expect_clean_failure(build, (ValueError, TypeError))
        if label.startswith(("top level [", "top level \"", "top level null", "top level 42", "top level true")):
            assert message and "JSON object" in message, label
        if label.startswith(("model =", "config =", "device =", "unknown")):
            assert message is not None, label
    for key, bad in (("lr", "fast"), ("batch_size", 0.5), ("weight_decay", [1]), ("optimizer", 3), ("seed", True)):
        message = expect_clean_failure(lambda: RunSpec.from_dict({**SPEC, "config": {**SPEC["config"], key: bad}}), ValueError)
        assert message and key in message
