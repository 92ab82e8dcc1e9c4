"""A person's own models and files the built-in ones never exercise: tuple and dict outputs,
float64 weights, token ids in .npy files, 16-bit images, sequence-first outputs."""
import numpy as np
import pytest
import torch
from torch import nn

import visualizer
from visualizer.capture.attribution import attribute
from visualizer.engine.inputs import read_image, read_input_file


class TwoHeads(nn.Module):
    def __init__(self, as_dict: bool = False) -> None:
        super().__init__()
        self.fc, self.aux, self.as_dict = nn.Linear(6, 4), nn.Linear(6, 2), as_dict

    def forward(self, x):
        return {"logits": self.fc(x), "aux": self.aux(x)} if self.as_dict else (self.fc(x), self.aux(x))


@pytest.mark.parametrize("as_dict", [False, True])
def test_tuple_and_dict_outputs_are_explained_through_their_first_tensor(as_dict):
    torch.manual_seed(0)
    model, x = TwoHeads(as_dict).eval(), torch.randn(3, 6)
    a = attribute(model, x, "integrated_gradients", target=1, steps=16)
    expected = x * model.fc.weight[1].detach()  # linear: IG from a zero baseline is x * w exactly
    np.testing.assert_allclose(a.values, expected.numpy(), rtol=1e-4, atol=1e-5)
    arrays = visualizer.internals(model, x, attribution=["saliency"])
    np.testing.assert_allclose(arrays["output"], model.fc(x).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("as_dict", [False, True])
def test_an_exported_program_with_several_outputs_runs_in_chunks_of_its_batch(tmp_path, as_dict):
    torch.manual_seed(0)
    model = TwoHeads(as_dict).eval()
    path = tmp_path / "two.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 6),)), str(path))
    x = torch.randn(5, 6)  # not a multiple of the exported batch of 2
    loaded = visualizer.load_model(path)
    out = loaded.module(x)
    first, second = (out["logits"], out["aux"]) if as_dict else out
    torch.testing.assert_close(first, model.fc(x))
    torch.testing.assert_close(second, model.aux(x))


def test_a_float64_model_gets_float64_inputs_and_its_own_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).double().eval()
    x = torch.rand(2, 1, 8, 8)  # float32 given: cast to the weights' dtype
    arrays = visualizer.internals(model, x, attribution=["saliency"])
    expected = model[0](x.double()).detach().numpy()
    np.testing.assert_allclose(arrays["activations/0"], expected, rtol=1e-6)
    assert arrays["attribution/saliency"].shape == (2, 1, 8, 8)


def test_whole_numbers_in_a_npy_stay_token_ids_and_pixel_values_become_floats(tmp_path):
    ids = np.array([[1, 2, 3, 0]], dtype=np.int32)
    np.save(tmp_path / "ids.npy", ids)
    x = read_input_file(tmp_path / "ids.npy", None)
    assert x.dtype == torch.int64 and x.tolist() == ids.tolist()
    emb = nn.Sequential(nn.Embedding(4, 3), nn.Flatten(), nn.Linear(12, 2)).eval()
    out = visualizer.internals(emb, x)["output"]
    np.testing.assert_allclose(out, emb(x).detach().numpy(), rtol=1e-6)
    cnn = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()  # no embedding: integers are values
    out = visualizer.internals(cnn, x)["output"]
    np.testing.assert_allclose(out, cnn(x.float()).detach().numpy(), rtol=1e-6)


def test_a_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    ramp = np.linspace(0, 65535, 8 * 8).reshape(8, 8).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    x = read_image(tmp_path / "ramp16.png", (1, 8, 8))
    np.testing.assert_allclose(x[0, 0].numpy(), ramp / 65535.0, atol=1e-4)


def test_a_sequence_first_model_is_refused_in_one_line():
    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = nn.LSTM(3, 4), nn.Linear(4, 2)  # (T, N, D) in and out

        def forward(self, x):
            return self.fc(self.lstm(x)[0])[-1]  # (N, 2) from a (T, N, 3) input

    with pytest.raises(ValueError, match="batch on the first dimension") as err:
        attribute(SeqFirst(), torch.randn(5, 2, 3), "saliency")
    assert "\n" not in str(err.value)


def test_an_exported_transformer_layer_gives_its_activations_without_asking_for_weights(tmp_path):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(20, 16), nn.Linear(16, 20)
            self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)))

    torch.manual_seed(0)
    model, x = Encoder().eval(), torch.randint(0, 20, (2, 7))
    path = tmp_path / "enc.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(path))
    arrays = visualizer.internals(visualizer.load_model(path), x)
    np.testing.assert_allclose(arrays["output"], model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(arrays["activations/emb"], model.emb(x).detach().numpy(), rtol=1e-6)


def test_grad_cam_on_a_conv3d_equals_its_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 5 * 5, 3)).eval()
    x = torch.randn(1, 1, 4, 5, 5)
    a = attribute(model, x, "grad_cam", target=2)  # the last conv is found: "0"
    act = model[0](x).detach().requires_grad_(True)
    score = model[3](model[2](model[1](act)))[0, 2]
    (grad,) = torch.autograd.grad(score, act)
    cam = torch.relu((grad.mean((2, 3, 4), keepdim=True) * act).sum(1, keepdim=True))  # same size as the input
    np.testing.assert_allclose(a.values, cam.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_grad_cam_on_an_exported_program_of_a_fixed_batch_says_how_to_export_it(tmp_path):
    model = nn.Sequential(nn.Conv1d(2, 3, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    x = torch.randn(3, 2, 20)
    torch.export.save(torch.export.export(model, (x,)), str(tmp_path / "c1.pt2"))
    with pytest.raises(ValueError, match="exported for batches of 3"):
        attribute(visualizer.load_model(tmp_path / "c1.pt2").module, x, "grad_cam")


def test_a_program_exported_in_train_mode_is_inspected_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    model(torch.rand(8, 3, 8, 8))  # running statistics that are not the defaults
    model.train()
    torch.export.save(torch.export.export(model, (torch.rand(4, 3, 8, 8),)), str(tmp_path / "bn.pt2"))
    loaded = visualizer.load_model(tmp_path / "bn.pt2")
    assert loaded.module.exported_in_training
    stats = {k: v.clone() for k, v in loaded.module.named_buffers()}
    x = torch.rand(4, 3, 8, 8)
    arrays = visualizer.internals(loaded, x)
    for k, v in loaded.module.named_buffers():
        assert torch.equal(v, stats[k]), k  # running statistics untouched
    np.testing.assert_allclose(arrays["output"], model.eval()(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    loaded.module.train()  # fine-tuning: batch statistics again, as exported
    before = dict(loaded.module.named_buffers())["1.running_mean"].clone()
    loaded.module(x)
    assert not torch.equal(dict(loaded.module.named_buffers())["1.running_mean"], before)


def test_a_model_returning_a_dict_trains_on_its_first_tensor():
    from tests.unit.helpers import plane_dataset
    from visualizer.engine.trainer import TrainConfig, Trainer

    class Scores(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return {"logits": self.fc(x), "features": x}

    torch.manual_seed(0)
    data = plane_dataset()
    trainer = Trainer(Scores(), data, TrainConfig(batch_size=16, seed=0), device="cpu")
    idx = trainer._perm[:16]  # the first batch
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(trainer.model.fc(trainer.x_train[idx]), trainer.y_train[idx])
    torch.testing.assert_close(trainer.step(), expected)
    val_loss, val_acc = trainer.evaluate()
    assert torch.isfinite(val_loss) and 0 <= float(val_acc) <= 1


def test_several_input_tensors_are_refused_in_one_line():
    with pytest.raises(ValueError, match="one input tensor") as err:
        visualizer.internals(nn.Linear(3, 2), (torch.randn(2, 3), torch.randn(2, 3)))
    assert "\n" not in str(err.value)
