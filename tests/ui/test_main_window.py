"""The real main window, driven offscreen: play, pause, step, linking, closing."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

SMALL_CNN = {"model": "cnn", "data": "shapes", "model_options": {"channels": [8, 16], "hidden": 32},
             "data_options": {"n_train": 512, "n_val": 128}, "config": {"batch_size": 32, "lr": 0.002}, "device": "cpu"}


@pytest.fixture()
def window(qtbot, tmp_path):
    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    w.ask_before_discarding = False
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.run_started, timeout=60_000):
        w.start_run(SMALL_CNN)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=20_000)
    yield w
    w.close()


def trainer_steps(w) -> int:
    return w.runner.session.trainer.step_count


def test_step_advances_exactly_one_and_every_panel_shows_it(qtbot, window):
    w = window
    start = trainer_steps(w)
    with qtbot.waitSignal(w.frame_rendered, timeout=20_000, check_params_cb=lambda s: s == start + 1):
        w.transport.step.trigger()
    qtbot.waitUntil(lambda: not w.runner.session.busy)
    assert trainer_steps(w) == start + 1
    frame = w.history.latest
    assert frame.step == start + 1
    metrics = w.panels["metrics"].shown
    assert metrics["steps"][-1] == start + 1
    assert np.array_equal(metrics["train_loss"][-1:], frame.scalars.values["train_loss"][-1:])
    assert w.status_labels["step"].text() == f"step {start + 1:,}"


def test_play_produces_frames_and_pause_stops_training(qtbot, window):
    w = window
    start = w.frames_shown
    w.transport.play.trigger()
    assert w.playing
    qtbot.waitUntil(lambda: w.frames_shown >= start + 3 and trainer_steps(w) > 5, timeout=60_000)
    w.transport.play.trigger()
    assert not w.playing
    qtbot.waitUntil(lambda: not w.runner.session.busy, timeout=10_000)
    paused_at = trainer_steps(w)
    # The paused state is captured, so the panels show exactly the step we stopped at.
    qtbot.waitUntil(lambda: w.history.latest.step == paused_at, timeout=10_000)
    with qtbot.waitSignal(w.frame_rendered, timeout=20_000, check_params_cb=lambda s: s == paused_at + 1):
        w.step(1)
    qtbot.waitUntil(lambda: not w.runner.session.busy)
    assert trainer_steps(w) == paused_at + 1  # nothing ran while paused


def test_closing_during_training_joins_the_worker(qtbot, window, qtlog):
    w = window
    w.transport.play.trigger()
    qtbot.waitUntil(lambda: trainer_steps(w) > 3, timeout=60_000)
    thread = w.runner._thread
    assert thread is not None and thread.is_alive()
    w.close()
    assert not thread.is_alive()
    assert not [r for r in qtlog.records if "thread" in r.message.lower()]


def test_bad_run_settings_show_a_message_and_keep_the_session(qtbot, window):
    w = window
    session = w.runner.session
    bad = dict(SMALL_CNN, config={"lr": -1})
    with qtbot.waitSignal(w.error_shown, timeout=30_000) as blocker:
        w.start_run(bad)
    assert "learning rate" in blocker.args[0]
    assert w.runner.session is session  # the running session is kept
    w.step(1)
    qtbot.waitUntil(lambda: trainer_steps(w) >= 1, timeout=20_000)


def test_live_setting_changes_reach_the_trainer(qtbot, window):
    w = window
    w.change_setting("lr", 0.01)
    w.step(1)
    qtbot.waitUntil(lambda: w.runner.session.trainer.config.lr == 0.01, timeout=20_000)
    assert w.runner.session.trainer.optimizer.param_groups[0]["lr"] == 0.01


def test_export_window_and_panel_images(qtbot, window, tmp_path):
    w = window
    assert w.export_widget(w, str(tmp_path / "window.png"))
    assert w.export_widget(w.panels["metrics"], str(tmp_path / "metrics.svg"))
    assert (tmp_path / "window.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "metrics.svg").read_bytes()[:2000]
    assert not w.export_widget(w, str(tmp_path / "missing-folder" / "x.png"))
