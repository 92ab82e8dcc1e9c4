"""Opening model files in the window: examples, exported programs, TorchScript, bad files,
pickles that need trust, and the describe dialog. The session shown before is kept on errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings
from torch import nn

torch.set_num_threads(1)


@pytest.fixture()
def window(qtbot, tmp_path):
    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    w.ask_before_discarding = False
    w.opener.confirm_trust = False
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def _open(qtbot, w, path) -> None:
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        assert w.opener.open_path(path)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=30_000)


def test_an_opened_example_is_inspected_without_training(qtbot, window):
    from visualizer.engine.checkpoint import load_checkpoint
    from visualizer.examples import example_models

    w = window
    path = example_models()["cnn-digits"]
    _open(qtbot, w, path)
    frame = w.history.latest
    assert frame.step == 0 and w.runner.session.trainer.step_count == 0
    model, _ = load_checkpoint(path)  # the same file, loaded and run by hand
    inputs = torch.from_numpy(w.run.probe_inputs)
    with torch.no_grad():
        probs = torch.softmax(model(inputs), -1).numpy()
    np.testing.assert_allclose(frame.probe.probs, probs, rtol=1e-4, atol=1e-6)
    assert w.run.data_name == "digits" and w.windowTitle().endswith("(checkpoint)")
    qtbot.waitUntil(lambda: "layer" in w.panels["activations"].shown, timeout=30_000)  # the panels drew it
    assert w.panels["activations"].shown["layer"] in frame.activations


def test_a_bad_file_shows_a_message_and_keeps_the_session(qtbot, window, tmp_path):
    from visualizer.examples import example_models

    w = window
    _open(qtbot, w, example_models()["cnn-digits"])
    session = w.runner.session
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(300))
    with qtbot.waitSignal(w.error_shown, timeout=10_000) as blocker:
        assert not w.opener.open_path(junk)
    assert blocker.args[0].startswith("Could not open junk.pt") and w.runner.session is session


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_needing_trust_is_refused_when_not_confirmed(qtbot, window, tmp_path):
    w = window
    marker = tmp_path / "ran"
    torch.save({"x": _Payload(str(marker))}, tmp_path / "evil.pt")
    with qtbot.waitSignal(w.error_shown, timeout=10_000) as blocker:
        assert not w.opener.open_path(tmp_path / "evil.pt")
    assert "can run code" in blocker.args[0] and not marker.exists() and w.runner.session is None


class Own(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(6 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def test_an_exported_program_shows_every_layer_after_describing_it(qtbot, window, tmp_path):
    from visualizer.engine.loading import write_sidecar

    w = window
    torch.manual_seed(0)
    own = Own().eval()
    path = tmp_path / "own.pt2"
    torch.export.save(torch.export.export(own, (torch.zeros(4, 1, 8, 8),),
                                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}), str(path))
    write_sidecar(path, {"input_shape": [1, 8, 8], "data": "digits"})  # what the describe dialog saves
    _open(qtbot, w, path)
    frame = w.history.latest
    assert frame.layer_order == ["features.0", "features.1", "classifier"]
    x = torch.from_numpy(w.run.probe_inputs)
    with torch.no_grad():
        conv = own.features[0](x)
    np.testing.assert_allclose(frame.activations["features.0"].channel_mean, conv.mean((2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    assert "features.0" in frame.filters  # the tap stands for a Conv2d, so its kernels are shown


def test_a_torchscript_model_says_what_cannot_be_shown(qtbot, window, tmp_path):
    w = window
    torch.manual_seed(0)
    path = tmp_path / "own.ts"
    own = Own().eval()
    torch.jit.save(torch.jit.script(own), str(path))
    from visualizer.engine.loading import write_sidecar

    write_sidecar(path, {"data": "digits"})
    _open(qtbot, w, path)
    assert w.history.latest.layer_order == ["output"]
    assert "forward hooks cannot be attached" in w.statusBar().currentMessage()
    # the kernels are read from the parameters even without hooks, and the Filters panel draws them
    frame = w.history.latest
    np.testing.assert_allclose(frame.filters["features.0"], own.features[0].weight.detach().mean(1).numpy(), rtol=1e-6)
    w.docks["filters"].raise_()
    panel = w.panels["filters"]
    panel.render(frame)
    assert panel.shown["layer"] == "features.0"
    for key in ("gradients", "activations"):  # the panels that cannot work say why
        w.docks[key].raise_()
        w.panels[key].render(frame)
        assert "cannot be hooked" in w.panels[key].caption.text(), key


def test_the_describe_dialog_checks_and_saves_its_answers(qtbot, tmp_path):
    from visualizer.engine.loading import read_sidecar
    from visualizer.ui.describe_dialog import DescribeDialog, parse_answers

    with pytest.raises(ValueError, match="input size"):
        parse_answers("cnn", "1,a,8", "", "", "", "")
    with pytest.raises(ValueError, match="normalisation"):
        parse_answers("cnn", "1,8,8", "", "0.5,0.5", "0.2", "")
    target = tmp_path / "w.pt"
    target.write_bytes(b"")
    dialog = DescribeDialog(target)
    qtbot.addWidget(dialog)
    dialog.arch.setCurrentText("cnn")
    dialog.shape.setText("1, 8, 8")
    dialog.classes.setText("zero, one")
    dialog.mean.setText("0.5")
    dialog.std.setText("0.25")
    dialog.save()
    assert dialog.saved
    assert read_sidecar(target) == {"arch": "cnn", "input_shape": [1, 8, 8], "class_names": ["zero", "one"],
                                    "normalisation": {"mean": [0.5], "std": [0.25]}}


def test_fine_tune_panel_freezes_layers_and_shows_how_far_others_moved(qtbot, window):
    from visualizer.examples import example_models

    w = window
    _open(qtbot, w, example_models()["cnn-digits"])
    w.docks["finetune"].show()
    w.docks["finetune"].raise_()
    panel = w.panels["finetune"]
    w.selection.set(layer="block1.pool")
    panel.freeze_up_to_selection()  # the parametrised layers up to block1.pool: block1.conv
    assert panel.frozen == ["block1.conv"]
    w.step(3)
    qtbot.waitUntil(lambda: panel.shown.get("frozen") == ["block1.conv"] and w.history.latest.step == 3, timeout=60_000)
    moved = panel.shown["moved"]
    assert moved["block1.conv"] == 0.0 and moved["head"] > 0.0
    assert panel.table.item(0, 2).text().endswith("0.00 %")


def test_dropping_a_model_file_on_the_window_opens_it(qtbot, window):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    from visualizer.examples import example_models

    w = window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(example_models()["cnn-digits"]))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        w.dropEvent(event)
    assert w.run.data_name == "digits" and w.windowTitle().startswith("visualizer: cnn-digits")


def test_show_opens_the_app_on_a_live_module(qtbot):
    import visualizer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))
    w = visualizer.show(model, block=False)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=60_000)
    assert w.run.data_name == "digits" and w.history.latest.layer_order == ["0", "1", "3"]
    x = torch.from_numpy(w.run.probe_inputs)
    with torch.no_grad():
        np.testing.assert_allclose(w.history.latest.probe.probs, torch.softmax(model(x), -1).numpy(), rtol=1e-4, atol=1e-6)
    assert w.runner.session.trainer.step_count == 0
    w.close()
    with pytest.raises(ValueError, match="no built-in dataset fits"):
        visualizer.show(nn.Linear(5, 2), block=False)
