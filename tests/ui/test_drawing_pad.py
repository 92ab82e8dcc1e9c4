"""The drawing pad: dataset digits drawn through the pad's preprocessing come back as the
dataset's own values and classify as the dataset's own; the panel shows the model's answer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from visualizer.engine.data.drawing import bitmap_to_digit, digit_to_bitmap, drawing_to_input, ink_to_bitmap

torch.set_num_threads(1)
PAD = 256
SCALE = PAD // 32


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target  # counts 0-16, as scikit-learn ships them


@pytest.fixture(scope="module")
def digits_model():
    from visualizer.engine.loading import load_model
    from visualizer.examples import example_models

    return load_model(example_models()["cnn-digits"]).module


def _ink(counts: np.ndarray) -> np.ndarray:
    """A dataset digit as pad ink: its 32x32 bitmap, each bitmap pixel SCALE x SCALE pad pixels."""
    return np.kron(digit_to_bitmap(counts).astype(np.float32), np.ones((SCALE, SCALE), np.float32))


def test_bitmap_blocks_are_scikit_learns_counts(raw_digits):
    images, _ = raw_digits
    for counts in images[:200]:
        bitmap = digit_to_bitmap(counts)
        assert bitmap.shape == (32, 32)
        np.testing.assert_array_equal(bitmap_to_digit(bitmap), counts)
        np.testing.assert_array_equal(ink_to_bitmap(_ink(counts), fit=False), bitmap)


def test_dataset_digits_drawn_on_the_pad_classify_as_the_datasets_own(qtbot, raw_digits, digits_model):
    from visualizer.ui.widgets.drawing_pad import DrawingPad

    images, labels = raw_digits
    pad = DrawingPad(PAD)
    qtbot.addWidget(pad)
    picked = np.random.default_rng(0).choice(len(images), 60, replace=False)
    drawn, fitted = [], []
    for i in picked:
        pad.set_ink(_ink(images[i]))
        drawn.append(drawing_to_input(pad.ink(), (1, 8, 8), fit=False))
        fitted.append(drawing_to_input(pad.ink(), (1, 8, 8), fit=True))
    drawn_x = torch.from_numpy(np.concatenate(drawn))
    dataset_x = torch.from_numpy((images[picked] / 16.0).astype(np.float32)[:, None])
    np.testing.assert_array_equal(drawn_x.numpy(), dataset_x.numpy())  # exactly the dataset's values
    with torch.no_grad():
        drawn_pred = digits_model(drawn_x).argmax(1).numpy()
        fitted_pred = digits_model(torch.from_numpy(np.concatenate(fitted))).argmax(1).numpy()
        dataset_pred = digits_model(dataset_x).argmax(1).numpy()
    np.testing.assert_array_equal(drawn_pred, dataset_pred)
    assert (drawn_pred == labels[picked]).mean() >= 0.9
    # size-normalised like NIST: the digits fill the box already, so the class rarely changes
    assert (fitted_pred == labels[picked]).mean() >= 0.85


def test_a_mouse_stroke_inks_the_pad(qtbot):
    from PySide6.QtCore import QPoint, Qt

    from visualizer.ui.widgets.drawing_pad import DrawingPad

    pad = DrawingPad(PAD)
    qtbot.addWidget(pad)
    pad.show()
    with qtbot.waitSignal(pad.drawn, timeout=5_000):
        qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(128, 40))
        qtbot.mouseMove(pad, QPoint(128, 220))
        qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(128, 220))
    ink = pad.ink()
    assert ink[130, 128] > 0.9 and ink[130, 20] == 0.0
    digit = drawing_to_input(ink, (1, 8, 8))[0, 0]
    assert digit[:, 3:5].sum() > digit[:, :2].sum()  # a vertical bar in the middle columns


def test_the_panel_shows_the_models_probabilities_for_the_drawing(qtbot, tmp_path, raw_digits, digits_model):
    from PySide6.QtCore import QSettings

    from visualizer.examples import example_models
    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        w.opener.open_path(example_models()["cnn-digits"])
    w.docks["drawing"].show()
    w.docks["drawing"].raise_()
    panel = w.panels["drawing"]
    images, _ = raw_digits
    panel.pad.set_ink(_ink(images[5]))
    x = panel.model_input()
    qtbot.waitUntil(lambda: "probs" in panel.shown and np.array_equal(panel.shown["input"], x), timeout=30_000)
    with torch.no_grad():
        expected = torch.softmax(digits_model(torch.from_numpy(x)), -1)[0].numpy()
    np.testing.assert_allclose(panel.shown["probs"], expected, rtol=1e-5, atol=1e-6)
    w.close()


def test_an_image_file_feeds_a_colour_model(qtbot, tmp_path):
    from PIL import Image
    from PySide6.QtCore import QSettings

    from visualizer.engine.loading import load_model
    from visualizer.examples import example_models
    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        w.opener.open_path(example_models()["cnn-shapes"])
    panel = w.panels["drawing"]
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[16:48, 16:48] = (250, 200, 30)  # a yellow square on black
    Image.fromarray(rgb).save(tmp_path / "square.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    assert not panel.choose_image(str(tmp_path / "broken.png")) and "not a readable" in panel.caption.text()
    assert panel.choose_image(str(tmp_path / "square.png"))
    qtbot.waitUntil(lambda: "probs" in panel.shown, timeout=30_000)
    size = w.run.input_shape[1:]
    x = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BILINEAR), np.float32) / 255.0
    model = load_model(example_models()["cnn-shapes"]).module
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x.transpose(2, 0, 1))[None]), -1)[0].numpy()
    np.testing.assert_allclose(panel.shown["probs"], expected, rtol=1e-5, atol=1e-6)
    w.close()
