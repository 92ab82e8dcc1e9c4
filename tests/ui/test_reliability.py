"""The window survives a diverging run, exceptions in the worker, and closing mid-run."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from tests.ui.conftest import make_window

DIVERGING = {"model": "mlp", "data": "spiral", "model_options": {"depth": 3, "width": 32},
             "config": {"optimizer": "sgd", "lr": 10.0, "batch_size": 32}, "device": "cpu"}


class Flaky(nn.Module):
    """A person's model that can be told to fail the way real models do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.head = nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)
        self.fail: BaseException | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail is not None and self.training:
            raise self.fail
        return self.head(self.act(self.fc1(x)))


def in_process_session(model, mailbox):
    from tests.unit.helpers import plane_dataset
    from visualizer.capture.session import CaptureSettings, TrainingSession
    from visualizer.engine.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    trainer = Trainer(model, plane_dataset(), TrainConfig(batch_size=16), device="cpu")
    return TrainingSession(trainer, mailbox, settings=CaptureSettings(threads=1, probe_size=8))


def test_a_diverging_run_pauses_names_and_highlights_the_first_non_finite_layer(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    with qtbot.waitSignal(w.run_started, timeout=120_000):
        w.start_run(DIVERGING)
    with qtbot.waitSignal(w.error_shown, timeout=120_000) as shown:
        w.transport.play.trigger()
    message = shown.args[0]
    assert "diverged" in message and "rolled back to step" in message
    layers = w.panels["layers"]
    qtbot.waitUntil(lambda: layers.model.divergence is not None, timeout=30_000)
    culprit = layers.model.divergence["layer"]
    assert culprit in w.run.layer_names and repr(culprit) in message
    assert w.selection.layer == culprit and layers.shown["nonfinite_layer"] == culprit
    assert layers.model.alarm_state(culprit) == "nonfinite" and layers.alarm_list.isVisibleTo(layers)
    assert not w.playing and w.transport.play.isEnabled()
    back = layers.model.divergence["rolled_back_to"]
    assert w.history.latest.step == back and w.history.metrics.data()[0].max(initial=0) <= back
    # lower the learning rate and train on from the snapshot
    w.change_setting("lr", 0.01)
    with qtbot.waitSignal(w.frame_rendered, timeout=60_000, check_params_cb=lambda s: s == back + 5):
        w.step(5)
    worker = w.runner.session
    w.close()
    assert not worker.alive and not worker._receiver.is_alive()  # process and receiver joined


@pytest.mark.parametrize("failure, expected", [
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (16x2 and 3x16)"), "could not process the batch"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "ran out of memory"),
    (ValueError("a bug in the person's code"), "ValueError: a bug in the person's code"),
])
def test_an_exception_in_the_worker_is_shown_and_the_window_carries_on(qtbot, tmp_path, failure, expected):
    w = make_window(qtbot, tmp_path)
    model = Flaky()
    session = in_process_session(model, w.mailbox)
    w.show_session(session)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=30_000)
    model.fail = failure
    with qtbot.waitSignal(w.error_shown, timeout=30_000) as shown:
        w.step(3)
    assert expected in shown.args[0] and "Training step 1" in shown.args[0] and "Traceback" not in shown.args[0]
    assert w.runner.session.alive and not w.playing and w.transport.step.isEnabled()
    model.fail = None  # the person fixes the cause, resets and continues
    w.reset_weights()
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000, check_params_cb=lambda s: s == 2):
        w.step(2)
    assert w.history.latest.step == 2 == session.trainer.step_count
    w.close()


def test_closing_during_training_and_an_analysis_joins_every_worker(qtbot, tmp_path):
    before = set(threading.enumerate())
    w = make_window(qtbot, tmp_path)
    session = in_process_session(Flaky(), w.mailbox)
    w.show_session(session)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=30_000)
    served = w.runner.session
    w.set_playing(True)
    qtbot.waitUntil(lambda: session.trainer.step_count > 3, timeout=30_000)
    session.request_analysis("probe", "layer_probes")
    qtbot.waitUntil(lambda: "probe" in session._analysis_runners, timeout=30_000)
    runner = session._analysis_runners["probe"]
    w.close()  # while training runs and the analysis may still be running
    assert not served.alive  # the serve thread was joined
    assert not runner._thread.is_alive()
    assert not [t for t in set(threading.enumerate()) - before if t.name in ("visualizer-train", "analysis-worker")]


def test_damaged_settings_are_ignored_and_a_bad_saved_run_falls_back_to_the_demo(qtbot, tmp_path):
    from PySide6.QtCore import QByteArray

    from tests.fuzz import file_corruptions, json_corruptions
    from visualizer.ui.main_window import LAYOUT_VERSION, MainWindow

    ini = tmp_path / "settings.ini"
    ini.write_bytes(bytes(range(256)) * 4)  # the settings file itself is garbage
    w = make_window(qtbot, tmp_path)
    assert w.last_spec() is None
    good_state, good_geometry = bytes(w.saveState(LAYOUT_VERSION)), bytes(w.saveGeometry())
    for (label, state), (_, geometry) in zip(file_corruptions(good_state), file_corruptions(good_geometry)):
        w.settings.setValue("window/state", QByteArray(state))
        w.settings.setValue("window/geometry", QByteArray(geometry))
        w._restore_settings()  # Qt refuses what it cannot read; the window stays as it was
        assert all(d.widget() is p for d, p in zip(w.docks.values(), w.panels.values())), label
    for label, text in json_corruptions({"model": "mlp", "data": "spiral", "config": {"lr": 0.01}}):
        w.settings.setValue("run/spec", text)
        spec = w.last_spec()
        assert spec is None or isinstance(spec, dict), label
    # a saved run that cannot be rebuilt: the person is told, and the demo opens instead
    bad = {"model": "mlp", "data": "spiral", "config": {"lr": "fast"}}
    small = {"model": "mlp", "data": "xor", "model_options": {"depth": 1, "width": 8}, "device": "cpu"}
    with qtbot.waitSignal(w.error_shown, timeout=120_000) as shown:
        w.start_run(bad, fallback=small)
    assert "Could not start the run" in shown.args[0] and "lr" in shown.args[0]
    with qtbot.waitSignal(w.run_started, timeout=120_000):
        pass
    assert w.run.data_name == "xor"
    w.close()


def test_layers_panel_marks_each_alarm_with_the_step_it_began(qtbot, panel_context, mlp_run):
    import dataclasses

    from PySide6.QtCore import Qt

    from tests.ui.conftest import make_window, show_panel
    from visualizer.ui.panels.layers import NAME, LayersPanel

    panel = show_panel(qtbot, LayersPanel, panel_context, mlp_run)
    names = mlp_run.info.layer_names
    relu = next(l.name for l in mlp_run.info.layers if l.kind == "ReLU")
    alarm = {"kind": "dead", "since": 3, "value": 0.9, "text": "90 % of units never active on the probe batch"}
    frame = dataclasses.replace(mlp_run.frame, info={**mlp_run.frame.info, "alarms": {relu: [alarm]}})
    panel.render(frame)
    row = names.index(relu)
    index = panel.model.index(row, NAME)
    assert "dead ReLUs since step 3" in panel.model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert panel.model.data(index, Qt.ItemDataRole.DecorationRole) is not None
    assert panel.model.data(panel.model.index(0 if row else 1, NAME), Qt.ItemDataRole.DecorationRole) is None
    assert "Dead ReLUs" in panel.alarm_list.text() and f"{relu} (since 3)" in panel.alarm_list.text()
    assert panel.shown["alarms"] == {relu: ["dead"]}
    calm = dataclasses.replace(mlp_run.frame, info={**mlp_run.frame.info, "alarms": {}})
    panel.render(calm)  # the alarm cleared: nothing marked, nothing listed
    assert panel.model.data(index, Qt.ItemDataRole.DecorationRole) is None and not panel.alarm_list.isVisibleTo(panel)
