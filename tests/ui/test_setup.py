"""Run setup panel: filled from the running run's spec, live settings, new-run requests."""
from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import show_panel
from visualizer.ui.panels.setup import SetupPanel

CNN_SPEC = {
    "model": "cnn", "data": "shapes",
    "model_options": {"channels": [8, 16], "hidden": 32},
    "data_options": {"n_train": 256, "n_val": 64},
    "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 32, "weight_decay": 0.0, "momentum": 0.9, "seed": 0},
    "device": "cpu",
}


@pytest.fixture()
def panel(qtbot, panel_context, cnn_run):
    info = replace(cnn_run.info, run_spec=CNN_SPEC)  # the runner sets run_spec; the fixture does not
    return show_panel(qtbot, SetupPanel, panel_context, replace(cnn_run, info=info))


def _no_signals(qtbot, panel):
    return qtbot.assertNotEmitted(panel.setting_changed), qtbot.assertNotEmitted(panel.run_requested)


def test_set_run_fills_the_form_from_the_run_spec(panel, cnn_run) -> None:
    f = panel.fields
    assert f["arch"].currentData() == "cnn" and f["data"].currentData() == "shapes"
    assert f["channels"].text() == "8, 16"
    assert f["hidden"].value() == 32
    assert f["kernel_size"].value() == cnn_run.info.spec["options"]["kernel_size"]
    assert f["n_train"].value() == 256 and f["n_val"].value() == 64
    assert f["optimizer"].currentData() == "adam"
    assert float(panel.lr_edit.text()) == pytest.approx(2e-3)
    assert f["batch_size"].value() == 32
    assert f["device"].currentData() == "cpu"
    # only the options of the chosen architecture and dataset are shown
    assert f["channels"].isVisibleTo(panel) and not f["depth"].isVisibleTo(panel)
    assert f["n_train"].isVisibleTo(panel) and not f["noise"].isVisibleTo(panel)
    assert not f["momentum"].isVisibleTo(panel)  # Adam has no momentum field
    assert panel.shown["pending"] is False
    assert panel.shown["spec"]["model_options"]["channels"] == [8, 16]
    assert panel.shown["spec"]["config"]["lr"] == pytest.approx(2e-3)
    assert not panel.start_button.isEnabled()
    assert "auto" in panel.init_note.text() and "Kaiming" in panel.init_note.text()


def test_changing_the_learning_rate_applies_it_live_once(qtbot, panel) -> None:
    panel.lr_edit.setFocus()
    panel.lr_edit.selectAll()
    with qtbot.waitSignal(panel.setting_changed) as blocker, qtbot.assertNotEmitted(panel.run_requested):
        qtbot.keyClicks(panel.lr_edit, "5e-3")
        qtbot.keyClick(panel.lr_edit, Qt.Key.Key_Return)
    assert blocker.args == ["lr", pytest.approx(5e-3)]
    with qtbot.assertNotEmitted(panel.setting_changed):  # same value again: nothing new
        panel.lr_edit.editingFinished.emit()
    assert panel.shown["pending"] is False
    with qtbot.waitSignal(panel.setting_changed) as blocker:
        panel.fields["optimizer"].setCurrentIndex(panel.fields["optimizer"].findData("sgd"))
    assert blocker.args == ["optimizer", "sgd"]
    assert panel.fields["momentum"].isVisibleTo(panel)


def test_structural_change_enables_start_and_builds(qtbot, panel) -> None:
    from visualizer.engine.run import RunSpec, build_trainer

    with qtbot.assertNotEmitted(panel.setting_changed), qtbot.assertNotEmitted(panel.run_requested):
        panel.fields["arch"].setCurrentIndex(panel.fields["arch"].findData("mlp"))
        panel.fields["data"].setCurrentIndex(panel.fields["data"].findData("moons"))
        panel.fields["n_samples"].setValue(60)
        panel.fields["depth"].setValue(2)
        panel.fields["width"].setValue(8)
    assert panel.shown["pending"] is True
    assert panel.start_button.isEnabled()
    assert panel.fields["depth"].isVisibleTo(panel) and not panel.fields["channels"].isVisibleTo(panel)
    with qtbot.waitSignal(panel.run_requested) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    spec = blocker.args[0]
    assert spec["model"] == "mlp" and spec["data"] == "moons"
    assert spec["model_options"]["depth"] == 2 and spec["data_options"]["n_samples"] == 60
    assert spec["config"]["lr"] == pytest.approx(2e-3)
    trainer = build_trainer(RunSpec.from_dict(spec))
    assert trainer.x_train.shape[1:] == (2,)
    assert trainer.model.spec["options"]["width"] == 8

    panel.revert()
    assert panel.fields["arch"].currentData() == "cnn" and panel.shown["pending"] is False


def test_plane_data_with_a_cnn_disables_start(qtbot, panel) -> None:
    with qtbot.assertNotEmitted(panel.run_requested):
        panel.fields["data"].setCurrentIndex(panel.fields["data"].findData("spiral"))
        panel.start_new_run()
    assert not panel.start_button.isEnabled()
    assert panel.compat_note.isVisibleTo(panel)
    assert "MLP" in panel.compat_note.text()
    assert "data" in panel.shown["errors"]


def test_bad_learning_rate_shows_an_error_and_emits_nothing(qtbot, panel) -> None:
    with qtbot.assertNotEmitted(panel.setting_changed), qtbot.assertNotEmitted(panel.run_requested):
        for text in ("fast", "-0.1", "0"):
            panel.lr_edit.setText(text)
            panel.lr_edit.editingFinished.emit()
            assert panel.message.isVisibleTo(panel)
            assert "Learning rate" in panel.message.text()
        panel.fields["seed"].setValue(3)  # a pending new run, but the bad rate blocks it
        panel.start_new_run()
    assert not panel.start_button.isEnabled()
    assert "lr" in panel.shown["errors"]


def test_bad_channel_list_is_reported(qtbot, panel) -> None:
    with qtbot.assertNotEmitted(panel.run_requested):
        panel.fields["channels"].setText("8, x")
        panel.fields["channels"].editingFinished.emit()
        panel.start_new_run()
    assert "channels" in panel.shown["errors"] and panel.message.isVisibleTo(panel)


def test_run_opened_from_a_file_locks_the_structure(qtbot, panel_context, cnn_run) -> None:
    opened = replace(cnn_run, info=replace(cnn_run.info, run_spec={}))  # no spec: from a file
    panel = show_panel(qtbot, SetupPanel, panel_context, opened)
    assert not panel.fields["arch"].isEnabled() and not panel.fields["data"].isEnabled()
    assert "opened from a file" in panel.status.text()
    assert panel.fields["channels"].text() == "8, 16"  # read from the model itself
    assert not panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.setting_changed) as blocker:
        panel.fields["batch_size"].setValue(16)
    assert blocker.args == ["batch_size", 16]
    qtbot.mouseClick(panel.unlock_button, Qt.MouseButton.LeftButton)
    assert panel.fields["arch"].isEnabled() and panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.run_requested) as blocker:
        panel.start_new_run()
    spec = blocker.args[0]
    assert spec["model"] == "cnn" and spec["model_options"]["channels"] == [8, 16]
    assert spec["config"]["batch_size"] == 16


def test_dropout_is_live_and_the_init_note_follows_the_activation(qtbot, panel) -> None:
    with qtbot.waitSignal(panel.setting_changed) as blocker, qtbot.assertNotEmitted(panel.run_requested):
        panel.fields["dropout"].setValue(0.25)
    assert blocker.args == ["dropout", pytest.approx(0.25)]
    assert panel.shown["pending"] is False
    panel.fields["activation"].setCurrentIndex(panel.fields["activation"].findData("tanh"))
    assert "Here: <b>Xavier (Glorot)</b>" in panel.init_note.text()
    panel.fields["init"].setCurrentIndex(panel.fields["init"].findData("kaiming"))
    assert "suits ReLU/GELU" in panel.init_note.text()
    assert panel.shown["pending"] is True and panel.shown["spec"]["model_options"]["init"] == "kaiming"
