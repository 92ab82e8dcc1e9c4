"""``visualizer export`` and the Python API: arrays checked against the submodules run by hand,
image and array inputs, what a format cannot give said on the terminal, bad input exit 2."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from visualizer.cli import main
from visualizer.engine.checkpoint import save_checkpoint
from visualizer.engine.data import make_dataset
from visualizer.engine.models import build_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("cnn", (1, 8, 8), 10, channels=[4, 8], hidden=16).eval()
    ds = make_dataset("digits")
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "digits.safetensors", model,
                           {"model": model.spec, "data": ds.describe()})
    return path, model, ds


def test_export_writes_outputs_activations_and_attributions(tmp_path, digits_checkpoint, capsys):
    path, model, ds = digits_checkpoint
    out = tmp_path / "internals.npz"
    code = main(["export", str(path), "--data", "digits", "--samples", "6", "--attribution", "integrated_gradients",
                 "--attribution", "saliency", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    arrays = np.load(out)
    x = ds.x_val[:6]
    with torch.no_grad():  # the submodules by hand, in the order CNN.forward runs them
        conv1 = model.block1.conv(x)
        relu1 = model.block1.relu(conv1)
        pool1 = model.block1.pool(relu1)
        conv2 = model.block2.conv(pool1)
        logits = model(x)
    np.testing.assert_allclose(arrays["activations/block1.conv"], conv1.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["activations/block1.pool"], pool1.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["activations/block2.conv"], conv2.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["output"], logits.numpy(), rtol=1e-5, atol=1e-6)
    assert arrays["attribution/integrated_gradients"].shape == (6, 1, 8, 8)
    assert arrays["attribution_delta/integrated_gradients"].shape == (6,)
    # integrated gradients' completeness: the attributions add up to f(x) - f(0) for the predicted class
    with torch.no_grad():
        base = model(torch.zeros_like(x))
    pred = logits.argmax(1)
    gap = (logits - base).gather(1, pred[:, None]).squeeze(1).numpy()
    total = arrays["attribution/integrated_gradients"].reshape(6, -1).sum(1)
    np.testing.assert_allclose(total, gap, atol=0.05 * np.abs(gap).max() + 1e-3)
    assert "attribution_delta/saliency" not in arrays


def test_export_of_an_image_file_resizes_it_to_the_model_input(tmp_path, digits_checkpoint):
    from PIL import Image

    path, model, _ = digits_checkpoint
    pixels = np.zeros((32, 32), np.uint8)
    pixels[:, 12:20] = 255  # a vertical bar, 8 of 32 columns
    Image.fromarray(pixels).save(tmp_path / "bar.png")
    out = tmp_path / "bar.npz"
    assert main(["export", str(path), "--input", str(tmp_path / "bar.png"), "--out", str(out)]) == 0
    expected = torch.from_numpy(np.asarray(Image.fromarray(pixels).resize((8, 8), Image.Resampling.BILINEAR),
                                           np.float32) / 255.0)[None, None]
    with torch.no_grad():
        np.testing.assert_allclose(np.load(out)["output"], model(expected).numpy(), rtol=1e-5, atol=1e-6)


def test_export_says_what_a_torchscript_file_cannot_give(tmp_path, digits_checkpoint, capsys):
    path, model, ds = digits_checkpoint
    scripted = tmp_path / "digits.ts"
    torch.jit.save(torch.jit.trace(model, ds.x_val[:2]), str(scripted))  # traced: a TorchScript file too
    np.save(tmp_path / "x.npy", ds.x_val[:3].numpy())
    out = tmp_path / "ts.npz"
    assert main(["export", str(scripted), "--input", str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not exported: per-layer activations" in printed
    arrays = np.load(out)
    assert list(arrays) == ["output"]
    with torch.no_grad():
        np.testing.assert_allclose(arrays["output"], model(ds.x_val[:3]).numpy(), rtol=1e-5, atol=1e-6)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_bad_export_input_is_one_line_and_exit_2(tmp_path, digits_checkpoint):
    path, _, _ = digits_checkpoint
    (tmp_path / "junk.pt").write_bytes(os.urandom(200))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 8, 8), np.float32))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(50))
    cases = [
        (["export", str(tmp_path / "junk.pt"), "--data", "digits", "--out", str(tmp_path / "a.npz")], "junk.pt"),
        (["export", str(path), "--input", str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "b.npz")], "(N, 1, 8, 8)"),
        (["export", str(path), "--input", str(tmp_path / "broken.png"), "--out", str(tmp_path / "c.npz")], "not a readable"),
        (["export", str(path), "--data", "digits", "--out", str(tmp_path / "no" / "d.npz")], "does not exist"),
        (["export", str(path), "--data", "spiral", "--out", str(tmp_path / "e.npz")], "do not fit"),
    ]
    for args, words in cases:
        result = main(args)
        assert result == 2, args
    out = _run(*cases[1][0])
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and cases[1][1] in lines[0] and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("*.npz")) and not list(tmp_path.glob(".*.tmp"))


def test_python_api_is_lazy_and_captures_a_live_module():
    code = ("import sys, visualizer; assert 'torch' not in sys.modules and 'PySide6' not in sys.modules; "
            "import torch; from torch import nn; torch.manual_seed(0); "
            "m = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)); x = torch.randn(5, 2); "
            "a = visualizer.internals(m, x); import visualizer.capture.session; assert callable(visualizer.internals); "
            "assert set(a) == {'output', 'activations/0', 'activations/1', 'activations/2'}, set(a); "
            "import numpy as np; np.testing.assert_allclose(a['activations/1'], torch.tanh(m[0](x)).detach().numpy(), rtol=1e-6); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_shipped_examples_open_and_match_their_recorded_accuracy():
    from visualizer.examples import example_models

    examples = example_models()
    assert {"cnn-shapes", "cnn-digits", "transformer-reverse", "vit-shapes"} <= set(examples)
    from visualizer.engine.loading import load_model

    for name in ("cnn-digits", "transformer-reverse", "vit-shapes"):
        loaded = load_model(examples[name])
        ds = make_dataset(loaded.data_name, **loaded.description["data"]["params"])
        with torch.no_grad():
            acc = (loaded.module(ds.x_val).argmax(-1) == ds.y_val).float().mean().item()
        assert acc == pytest.approx(loaded.description["metrics"]["val_acc"], abs=1e-3), name
    assert all(p.stat().st_size < 2_000_000 for p in examples.values())


def test_the_transformer_example_attends_along_the_anti_diagonal():
    import visualizer
    from visualizer.capture.attention import antidiagonal_share
    from visualizer.examples import example_models

    loaded = visualizer.load_model(example_models()["transformer-reverse"])
    x = make_dataset("reverse", **loaded.description["data"]["params"]).x_val[:64]
    maps = {k: v for k, v in visualizer.internals(loaded, x).items() if k.startswith("attention/")}
    # reversing needs some head to look at position T-1-t from position t
    best = max(antidiagonal_share(v[:, h]) for v in maps.values() for h in range(v.shape[1]))
    assert best > 0.9


def test_image_and_array_inputs_refuse_damaged_files_in_one_line(tmp_path):
    from PIL import Image

    from visualizer.engine.inputs import InputError, read_image, read_input_file

    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(tmp_path / "ok.jpg")
    np.save(tmp_path / "ok.npy", np.zeros((2, 1, 8, 8), np.float32))
    assert read_image(tmp_path / "ok.jpg", (3, 8, 8)).shape == (1, 3, 8, 8)
    rng = np.random.default_rng(0)
    for name in ("ok.png", "ok.jpg", "ok.npy"):
        data = (tmp_path / name).read_bytes()
        for how, bad in {"truncated": data[: len(data) // 2], "random": rng.bytes(len(data)), "empty": b""}.items():
            target = tmp_path / f"{how}-{name}"
            target.write_bytes(bad)
            with pytest.raises(InputError) as err:
                read_input_file(target, (1, 8, 8))
            assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="cannot be fed"):
        read_image(tmp_path / "ok.png", (2,))


def test_export_of_a_state_dict_with_its_architecture_on_the_command_line(tmp_path, digits_checkpoint):
    _, model, ds = digits_checkpoint
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    out = tmp_path / "sd.npz"
    assert main(["export", str(tmp_path / "weights.pt"), "--arch", "cnn", "--input-shape", "1,8,8", "-M", "channels=[4,8]",
                 "-M", "hidden=16", "--data", "digits", "--samples", "5", "--out", str(out)]) == 0
    with torch.no_grad():
        np.testing.assert_allclose(np.load(out)["output"], model(ds.x_val[:5]).numpy(), rtol=1e-5, atol=1e-6)
    assert main(["export", str(tmp_path / "weights.pt"), "--data", "digits", "--out", str(out)]) == 2


# ----------------------------------------------------------------------------- sequence models, Grad-CAM
@pytest.fixture(scope="module")
def reverse_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    ds = make_dataset("reverse", n_train=64, n_val=32)
    model = build_model("transformer", ds.input_shape, ds.num_classes, vocab_size=len(ds.tokens), num_layers=2,
                        num_heads=2, d_model=16, ff_width=32).eval()
    path = save_checkpoint(tmp_path_factory.mktemp("seq") / "reverse.safetensors", model,
                           {"model": model.spec, "data": ds.describe()})
    return path, model, ds


def _attention_by_hand(model, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """softmax(Q K^T / sqrt(d)) per head, from the q/k Linear weights applied to each block's normalised input."""
    maps = {}
    with torch.no_grad():
        h = model.embed(ids) + model.pos_embed(torch.arange(ids.shape[1]))
        for k in range(1, model.num_layers + 1):
            block = getattr(model, f"block{k}")
            a = block.norm1(h)
            n, t, d = a.shape
            heads = block.attn.num_heads
            q = (a @ block.attn.q.weight.T + block.attn.q.bias).view(n, t, heads, d // heads).transpose(1, 2)
            kk = (a @ block.attn.k.weight.T + block.attn.k.bias).view(n, t, heads, d // heads).transpose(1, 2)
            maps[f"block{k}.attn"] = torch.softmax(q @ kk.transpose(-1, -2) / (d // heads) ** 0.5, -1).numpy()
            h = block(h)
    return maps


def test_export_of_our_transformer_writes_hand_checked_attention_and_complete_ig(tmp_path, reverse_checkpoint, capsys):
    path, model, ds = reverse_checkpoint
    out = tmp_path / "text.npz"
    code = main(["export", str(path), "--text", "3 1 4 1 5 9 2 6", "--attribution", "integrated_gradients",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    arrays = np.load(out)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])  # the dataset's symbols are the digits themselves
    assert ds.tokens[:10] == [str(d) for d in range(10)]
    for name, expected in _attention_by_hand(model, ids).items():
        np.testing.assert_allclose(arrays[f"attention/{name}"], expected, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        logits = model(ids)
        base = model(torch.zeros_like(ids))
    np.testing.assert_allclose(arrays["output"], logits.numpy(), rtol=1e-5, atol=1e-6)
    # one score per token, for the predicted class at the last position; completeness against id 0 everywhere
    values = arrays["attribution/integrated_gradients"]
    assert values.shape == (1, 8)
    target = int(logits[0, -1].argmax())
    gap = float(logits[0, -1, target] - base[0, -1, target])
    assert values.sum() == pytest.approx(gap, abs=0.05 * abs(gap) + 1e-3)
    delta = arrays["attribution_delta/integrated_gradients"]
    assert delta.shape == (1,) and abs(float(delta[0])) < 0.05 * abs(gap) + 1e-3


def test_export_with_data_of_a_sequence_model_and_unknown_symbols(tmp_path, reverse_checkpoint):
    path, model, ds = reverse_checkpoint
    out = tmp_path / "data.npz"
    assert main(["export", str(path), "--data", "reverse", "--samples", "4", "--out", str(out)]) == 0
    arrays = np.load(out)
    x = make_dataset("reverse", **ds.params).x_val[:4]
    for name, expected in _attention_by_hand(model, x).items():
        np.testing.assert_allclose(arrays[f"attention/{name}"], expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(arrays[f"attention/{name}"].sum(-1), 1.0, rtol=1e-5)
    result = _run("export", str(path), "--text", "3 1 x", "--out", str(tmp_path / "bad.npz"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "unknown symbol 'x'" in lines[0], result.stderr
    assert not (tmp_path / "bad.npz").exists()


def test_export_grad_cam_of_a_cnn_has_the_input_spatial_shape(tmp_path, digits_checkpoint):
    import torch.nn.functional as F

    path, model, ds = digits_checkpoint
    out = tmp_path / "cam.npz"
    assert main(["export", str(path), "--data", "digits", "--samples", "3", "--attribution", "grad_cam",
                 "--out", str(out)]) == 0
    cam = np.load(out)["attribution/grad_cam"]
    assert cam.shape == (3, 1, 8, 8)
    # Grad-CAM by hand at the last conv: ReLU(sum_c mean(dy/dA_c) * A_c), upsampled bilinearly to 8x8
    x = ds.x_val[:3]
    kept = {}
    handle = model.block2.conv.register_forward_hook(lambda m, i, o: kept.update(a=o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    pred = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits.gather(1, pred[:, None]).sum(), kept["a"])
    raw = torch.relu((grad.mean((2, 3), keepdim=True) * kept["a"]).sum(1, keepdim=True)).detach()
    expected = F.interpolate(raw, size=(8, 8), mode="bilinear")
    np.testing.assert_allclose(cam, expected.numpy(), rtol=1e-4, atol=1e-6)
