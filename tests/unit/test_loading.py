"""Opening models from files: every format made here, checked against the modules run by hand,
bad files refused with one line, and a pickle that would run code refused without running it."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from visualizer.capture.internals import capture_internals
from visualizer.engine.loading import LoadError, detect_format, load_model, read_sidecar, write_sidecar

torch.set_num_threads(1)


class OwnBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class OwnNet(nn.Module):
    """A person's own architecture (not built in): nested blocks, functional ops in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.block = OwnBlock()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.block(x)), 1))


def by_hand(m: OwnNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each submodule run by hand, in order (no hooks)."""
    with torch.no_grad():
        conv = m.block.conv(x)
        act = m.block.act(conv)
        pool = m.pool(act)
        head = m.head(torch.flatten(pool, 1))
    return {"block.conv": conv, "block.act": act, "pool": pool, "head": head}


@pytest.fixture()
def own() -> OwnNet:
    torch.manual_seed(0)
    return OwnNet().eval()


@pytest.fixture()
def x() -> torch.Tensor:
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _small_cnn():
    from visualizer.engine.models import build_model

    torch.manual_seed(0)
    return build_model("cnn", (1, 8, 8), 10, channels=[4, 8], hidden=16).eval()


# ----------------------------------------------------------------------------- formats
def test_checkpoint_opens_with_its_description(tmp_path, x):
    from visualizer.engine.checkpoint import save_checkpoint

    model = _small_cnn()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"model": model.spec, "data": {"name": "digits"}})
    loaded = load_model(path)
    assert loaded.kind == "checkpoint" and loaded.data_name == "digits" and loaded.input_shape == (1, 8, 8)
    assert torch.equal(loaded.module(x), model(x))


def test_state_dict_needs_its_architecture_and_lists_mismatched_keys(tmp_path, x):
    model = _small_cnn()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(LoadError, match="holds only weights"):
        load_model(path)
    loaded = load_model(path, arch="cnn", input_shape=(1, 8, 8), options={"channels": [4, 8], "hidden": 16})
    assert loaded.kind == "state_dict"
    assert torch.equal(loaded.module(x), model(x))
    with pytest.raises(LoadError) as err:  # the default CNN is wider and deeper: keys and shapes differ
        load_model(path, arch="cnn", input_shape=(1, 8, 8))
    message = str(err.value)
    assert "missing keys: block3.conv.weight" in message and "wrong shapes: block1.conv.weight (4, 1, 3, 3)" in message
    assert "\n" not in message


@pytest.mark.parametrize("answers, message", [
    ({"class_names": 5}, "class_names must be a list of names, got 5"),
    ({"normalisation": "x"}, "normalisation must be"),
    ({"normalisation": {"mean": "abc", "std": [1]}}, "normalisation mean must be numbers"),
    ({"normalisation": {"mean": [0.5], "std": [0]}}, "normalisation std must be positive numbers"),
])
def test_a_description_of_the_wrong_shape_is_one_line_naming_the_file(tmp_path, answers, message):
    from visualizer.engine.checkpoint import save_checkpoint

    model = _small_cnn()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"model": model.spec, "data": {"name": "digits"}})
    write_sidecar(path, answers)
    with pytest.raises(LoadError) as err:
        load_model(path)
    assert message in str(err.value) and "m.safetensors" in str(err.value) and "\n" not in str(err.value)


def test_a_checkpoint_whose_description_does_not_fit_its_weights_lists_the_shapes(tmp_path):
    from visualizer.engine.checkpoint import save_checkpoint

    model = _small_cnn()
    for change, message in ((dict(num_classes=3), "wrong shapes: head.weight (10, 16) vs (3, 16)"),
                            (dict(options=[4, 8]), "its options are not a mapping")):
        path = save_checkpoint(tmp_path / "m.safetensors", model, {"model": {**model.spec, **change}})
        with pytest.raises(LoadError) as err:
            load_model(path)
        assert message in str(err.value) and "\n" not in str(err.value)


def test_bare_safetensors_with_saved_answers(tmp_path, x):
    from safetensors.torch import save_file

    model = _small_cnn()
    path = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    side = write_sidecar(path, {"arch": "cnn", "data": "digits", "options": {"channels": [4, 8], "hidden": 16},
                                "class_names": list("abcdefghij")})
    assert side.name == "bare.safetensors.visualizer.json" and read_sidecar(path)["arch"] == "cnn"
    loaded = load_model(path)
    assert loaded.kind == "state_dict" and loaded.input_shape == (1, 8, 8) and loaded.class_names[0] == "a"
    assert torch.equal(loaded.module(x), model(x))


@pytest.mark.parametrize("dynamic", [True, False])
def test_exported_program_captures_every_module_by_name(tmp_path, own, x, dynamic):
    example = (x[:2],)
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=64)}} if dynamic else None
    program = torch.export.export(own, example, dynamic_shapes=shapes)
    path = tmp_path / "own.pt2"
    torch.export.save(program, str(path))
    loaded = load_model(path)
    assert loaded.kind == "exported" == detect_format(path)
    result = capture_internals(loaded, x)  # 5 samples: a fixed-batch program runs in chunks of 2
    expected = by_hand(own, x)
    assert set(k for k in result.arrays if k.startswith("activations/")) == {f"activations/{k}" for k in expected}
    for name, value in expected.items():
        np.testing.assert_allclose(result.arrays[f"activations/{name}"], value.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.arrays["output"], expected["head"].numpy(), rtol=1e-5, atol=1e-6)
    # the taps own the program's parameters under the original names
    assert dict(loaded.module.named_parameters()).keys() == dict(own.named_parameters()).keys()


def test_exported_program_trains_its_own_weights(tmp_path, own, x):
    program = torch.export.export(own, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, str(tmp_path / "own.pt2"))
    module = load_model(tmp_path / "own.pt2").module
    module(x).sum().backward()
    conv = dict(module.named_parameters())["block.conv.weight"]
    reference = OwnNet()
    reference.load_state_dict(own.state_dict())
    reference(x).sum().backward()
    torch.testing.assert_close(conv.grad, reference.block.conv.weight.grad)


def test_torchscript_gives_outputs_and_says_what_it_cannot(tmp_path, own, x):
    path = tmp_path / "own.ts"
    torch.jit.save(torch.jit.script(own), str(path))
    loaded = load_model(path)
    assert loaded.kind == "torchscript"
    result = capture_internals(loaded, x, attribution=["saliency"])
    np.testing.assert_allclose(result.arrays["output"], by_hand(own, x)["head"].numpy(), rtol=1e-5, atol=1e-6)
    assert not [k for k in result.arrays if k.startswith("activations/")]
    assert any("hooks cannot be attached" in n for n in result.notes)
    # input-level attribution: |d logit[predicted] / d input|, computed here with plain autograd
    inp = x.clone().requires_grad_(True)
    logits = own(inp)
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
    np.testing.assert_allclose(result.arrays["attribution/saliency"], inp.grad.abs().numpy(), rtol=1e-5, atol=1e-7)
    assert {n for n, _ in loaded.module.named_parameters()} == {n for n, _ in own.named_parameters()}


def test_trusted_pickle_loads_a_whole_module(tmp_path, own, x):
    path = tmp_path / "whole.pt"
    torch.save(own, path)
    with pytest.raises(LoadError, match="--trust"):
        load_model(path)
    loaded = load_model(path, trust=True)
    assert loaded.kind == "pickle" and torch.equal(loaded.module(x), own(x))


class _Malicious:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    bad = _Malicious()
    bad.marker = str(marker)
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save({"weight": torch.zeros(1), "payload": bad}, path)
    else:
        path.write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(LoadError) as err:
        load_model(path)
    assert "can run code" in str(err.value) or "not a PyTorch file" in str(err.value)
    assert not marker.exists()


# ----------------------------------------------------------------------------- Transformers
def _tiny_bert(folder):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]")
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, num_labels=2)
    config._attn_implementation = "eager"  # so the reference model here returns its attention weights
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return model, fast


def test_transformers_folder_gives_attention_with_real_tokens(tmp_path):
    model, tokenizer = _tiny_bert(tmp_path / "bert")
    loaded = load_model(tmp_path / "bert")
    assert loaded.kind == "hf" and loaded.tokenizer is not None
    result = capture_internals(loaded, "the cat sat on the mat")
    enc = tokenizer(["the cat sat on the mat"], return_tensors="pt")
    assert result.arrays["output"].shape == (1, 2)
    maps = {k: v for k, v in result.arrays.items() if k.startswith("attention/")}
    assert len(maps) == 2 and all(v.shape == (1, 2, 6, 6) for v in maps.values())
    # layer 0 by hand: softmax(Q K^T / sqrt(d)) from the embeddings and the query/key projections
    with torch.no_grad():
        h = model.bert.embeddings(input_ids=enc["input_ids"], token_type_ids=torch.zeros_like(enc["input_ids"]))
        att = model.bert.encoder.layer[0].attention.self
        q = att.query(h).view(1, 6, 2, 8).transpose(1, 2)
        k = att.key(h).view(1, 6, 2, 8).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1)
        logits = model(**enc).logits
    first = maps[sorted(maps)[0]]
    np.testing.assert_allclose(first, expected.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.arrays["output"], logits.numpy(), rtol=1e-5, atol=1e-6)
    assert "activations/bert.embeddings.word_embeddings" in result.arrays


# ----------------------------------------------------------------------------- bad files
def _corruptions(data: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    flipped = bytearray(data)
    for i in rng.integers(len(data) // 4, len(data), size=max(8, len(data) // 50)):
        flipped[i] ^= 0xFF
    return {"empty": b"", "truncated": data[: len(data) // 2], "corrupted": bytes(flipped),
            "random": rng.bytes(max(64, len(data) // 4))}


def _model_files(tmp_path, own, x) -> dict[str, "os.PathLike[str]"]:
    from visualizer.engine.checkpoint import save_checkpoint

    cnn = _small_cnn()
    files = {"checkpoint": save_checkpoint(tmp_path / "ck.safetensors", cnn, {"model": cnn.spec})}
    files["state_dict"] = tmp_path / "sd.pt"
    torch.save(cnn.state_dict(), files["state_dict"])
    files["exported"] = tmp_path / "own.pt2"
    torch.export.save(torch.export.export(own, (x,)), str(files["exported"]))
    files["torchscript"] = tmp_path / "own.ts"
    torch.jit.save(torch.jit.script(own), str(files["torchscript"]))
    return files


def test_every_loader_refuses_damaged_files_in_one_line(tmp_path, own, x):
    files = _model_files(tmp_path, own, x)
    for kind, path in files.items():
        data = open(path, "rb").read()
        for how, damaged in _corruptions(data).items():
            target = tmp_path / f"bad-{how}-{os.path.basename(path)}"
            target.write_bytes(damaged)
            try:
                loaded = load_model(target, arch="cnn", input_shape=(1, 8, 8))
            except LoadError as exc:
                assert str(exc) and "\n" not in str(exc), (kind, how, str(exc))
            else:  # flipped bytes inside a weight are still a loadable file: it must at least run
                loaded.module(x if kind in ("exported", "torchscript") else torch.zeros(2, 1, 8, 8))


def test_damaged_transformers_folder_and_sidecar(tmp_path):
    _tiny_bert(tmp_path / "bert")
    (tmp_path / "bert" / "config.json").write_text("{not json")
    with pytest.raises(LoadError) as err:
        load_model(tmp_path / "bert")
    assert "\n" not in str(err.value)
    _tiny_bert(tmp_path / "bert2")
    weights = tmp_path / "bert2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(LoadError):
        load_model(tmp_path / "bert2")
    model = _small_cnn()
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    (tmp_path / "sd.pt.visualizer.json").write_bytes(os.urandom(64))
    with pytest.raises(LoadError, match="visualizer.json"):
        load_model(path)


def test_unknown_files_and_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LoadError, match="not a model file"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(LoadError, match="no such file"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(LoadError, match="config.json"):
        load_model(tmp_path)


def test_export_of_a_transformers_folder_with_text(tmp_path):
    from visualizer.cli import main

    model, tokenizer = _tiny_bert(tmp_path / "bert")
    out = tmp_path / "bert.npz"
    assert main(["export", str(tmp_path / "bert"), "--text", "the cat sat", "--attribution", "saliency",
                 "--out", str(out)]) == 0
    arrays = np.load(out)
    enc = tokenizer(["the cat sat"], return_tensors="pt")
    with torch.no_grad():
        reference = model(**enc, output_attentions=True)
    np.testing.assert_allclose(arrays["output"], reference.logits.numpy(), rtol=1e-5, atol=1e-6)
    maps = sorted(k for k in arrays.files if k.startswith("attention/"))
    assert maps == ["attention/bert.encoder.layer.0.attention", "attention/bert.encoder.layer.1.attention"]
    np.testing.assert_allclose(arrays[maps[1]], reference.attentions[1].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(arrays[maps[1]].sum(-1), 1.0, rtol=1e-5)


def test_exported_convolutions_keep_their_receptive_fields(tmp_path):
    from visualizer.capture.hierarchy import receptive_field

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.AvgPool2d(3, stride=1)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(2, 1, 32, 32),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(tmp_path / "rf.pt2"))
    exported = load_model(tmp_path / "rf.pt2").module
    for layer in ("0", "2", "3", "4"):
        assert receptive_field(exported, layer, (1, 32, 32)) == receptive_field(model, layer, (1, 32, 32)), layer


def test_a_transformers_encoder_without_a_head_gives_its_hidden_states(tmp_path):
    transformers = pytest.importorskip("transformers")
    classifier, tokenizer = _tiny_bert(tmp_path / "bert")
    transformers.BertModel(classifier.config).save_pretrained(tmp_path / "bare")  # the same config, no head
    tokenizer.save_pretrained(tmp_path / "bare")
    reference = transformers.BertModel.from_pretrained(tmp_path / "bare", attn_implementation="eager").eval()
    loaded = load_model(tmp_path / "bare")
    assert loaded.module.spec["head"] is False and load_model(tmp_path / "bert").module.spec["head"] is True
    enc = tokenizer(["the cat sat"], return_tensors="pt")
    with torch.no_grad():
        expected = reference(**enc).last_hidden_state
    np.testing.assert_allclose(capture_internals(loaded, "the cat sat").arrays["output"], expected.numpy(),
                               rtol=1e-5, atol=1e-6)
