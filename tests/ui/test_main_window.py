"""The real main window, driven offscreen: play, pause, step, settings, closing.

Runs train in a worker process; the tests observe it as the window does, through the
frames and status it posts."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from tests.ui.conftest import make_window

SMALL_CNN = {"model": "cnn", "data": "shapes", "model_options": {"channels": [8, 16], "hidden": 32},
             "data_options": {"n_train": 512, "n_val": 128}, "config": {"batch_size": 32, "lr": 0.002}, "device": "cpu"}


@pytest.fixture()
def window(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path)
    with qtbot.waitSignal(w.run_started, timeout=120_000):
        w.start_run(SMALL_CNN)
    qtbot.waitUntil(lambda: w.history.latest is not None, timeout=30_000)
    yield w
    w.close()


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory):
    """One window and worker for the tests that only step, read and click (a worker costs seconds to start).
    Waited on by polling the event loop until a condition holds (qtbot is per test)."""
    import time

    from visualizer.ui.main_window import MainWindow

    def until(condition, timeout_s: float = 120.0) -> None:
        end = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < end, "the shared window did not get its run"
            qapp.processEvents()
            time.sleep(0.01)

    w = MainWindow(settings=QSettings(str(tmp_path_factory.mktemp("shared") / "settings.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    w.ask_before_discarding = False
    w.show()
    w.start_run(SMALL_CNN)
    until(lambda: w.run is not None and w.history.latest is not None)
    yield w
    w.close()


@pytest.fixture()
def reused(qtbot, shared_window):
    """The shared window, paused and idle."""
    w = shared_window
    w.set_playing(False)
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    return w


def idle(w) -> bool:
    return not w.runner.session.busy


def test_step_advances_exactly_one_and_every_panel_shows_it(qtbot, reused):
    w = reused
    start = w.history.latest.step
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000, check_params_cb=lambda s: s == start + 1):
        w.transport.step.trigger()
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    assert w.runner.session.step == start + 1
    frame = w.history.latest
    assert frame.step == start + 1
    metrics = w.panels["metrics"].shown
    assert metrics["steps"][-1] == start + 1
    assert np.array_equal(metrics["train_loss"][-1:], frame.scalars.values["train_loss"][-1:])
    assert w.status_labels["step"].text() == f"step {start + 1:,}"


def test_play_produces_frames_and_pause_stops_training(qtbot, window):
    w = window
    start = w.history.latest.step
    rendered: list[int] = []  # the steps of the frames drawn while playing
    w.frame_rendered.connect(rendered.append)
    w.transport.play.trigger()
    assert w.playing
    # Counted, not timed: two frames drawn from different steps of play, the later one at least
    # five steps on (captures are rate-limited, so how long that takes depends on the machine's load).
    qtbot.waitUntil(lambda: len({s for s in rendered if s > start}) >= 2 and max(rendered) > start + 5, timeout=180_000)
    w.transport.play.trigger()
    assert not w.playing
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    paused_at = w.runner.session.step
    # The paused state is captured, so the panels show exactly the step training stopped at.
    qtbot.waitUntil(lambda: w.history.latest.step == paused_at, timeout=30_000)
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000, check_params_cb=lambda s: s == paused_at + 1):
        w.step(1)
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    assert w.runner.session.step == paused_at + 1  # nothing ran while paused


def test_closing_during_training_stops_and_joins_the_worker(qtbot, window, qtlog):
    w = window
    w.transport.play.trigger()
    qtbot.waitUntil(lambda: w.history.latest.step > 3, timeout=90_000)
    session = w.runner.session
    assert session.alive
    w.close()
    assert not session.alive and not session._receiver.is_alive()
    assert not [r for r in qtlog.records if "thread" in r.message.lower()]


def test_bad_run_settings_show_a_message_and_keep_the_session(qtbot, reused):
    w = reused
    session = w.runner.session
    with qtbot.waitSignal(w.error_shown, timeout=60_000) as blocker:
        w.start_run(dict(SMALL_CNN, config={"lr": -1}))
    assert "learning rate" in blocker.args[0]
    assert w.runner.session is session  # the running session is kept and still trains
    start = w.history.latest.step
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000, check_params_cb=lambda s: s == start + 1):
        w.step(1)


def test_live_setting_changes_reach_the_trainer(qtbot, reused):
    w = reused
    w.change_setting("lr", 0.01)
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000):
        w.step(1)
    qtbot.waitUntil(lambda: w.history.latest.info["lr"] == 0.01, timeout=30_000)
    assert w.history.latest.scalars.values["lr"][-1] == 0.01


def test_export_window_and_panel_images(qtbot, reused, tmp_path):
    w = reused
    assert w.export_widget(w, str(tmp_path / "window.png"))
    assert w.export_widget(w.panels["metrics"], str(tmp_path / "metrics.svg"))
    assert w.export_widget(w, str(tmp_path / "window.svg"))
    assert (tmp_path / "window.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("metrics.svg", "window.svg"):
        svg = (tmp_path / name).read_text()
        assert "<svg" in svg[:2000]
        assert svg.count("<path") + svg.count("<polyline") > 20  # the plots' curves, axes and text: drawn, not just a header
    assert "loss (cross-entropy)" in (tmp_path / "metrics.svg").read_text()  # the axis titles are there as text
    assert not w.export_widget(w, str(tmp_path / "missing-folder" / "x.png"))


def test_a_live_model_is_served_in_process(qtbot, window):
    """visualizer.show() path: a TrainingSession made in this process, served by a thread."""
    import torch

    from visualizer.capture.session import TrainingSession
    from visualizer.engine.run import RunSpec, build_trainer

    torch.set_num_threads(1)
    w = window
    session = TrainingSession(build_trainer(RunSpec.from_dict(SMALL_CNN)), w.mailbox)
    w.show_session(session)
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000, check_params_cb=lambda s: s == 1):
        w.step(1)
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    assert session.trainer.step_count == 1


def test_clicking_a_layer_or_sample_focuses_every_linked_panel(qtbot, reused):
    from PySide6.QtCore import Qt

    w = reused
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000):
        w.step(1)  # a training step, so gradients exist too
    qtbot.waitUntil(lambda: idle(w), timeout=30_000)
    frame = w.history.latest
    layers = w.panels["layers"]
    row = frame.layer_order.index("block2.conv")
    rect = layers.table.visualRect(layers.model.index(row, 0))
    qtbot.mouseClick(layers.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.selection.layer == "block2.conv"
    act, filt, grad = w.panels["activations"].shown, w.panels["filters"].shown, w.panels["gradients"].shown
    assert act["layer"] == "block2.conv" and np.array_equal(act["maps"], frame.activations["block2.conv"].maps[act["sample"]])
    assert filt["layer"] == "block2.conv" and np.array_equal(filt["kernels"], frame.filters["block2.conv"])
    assert grad["hist_layer"] == "block2.conv"

    samples = w.panels["samples"]
    rect = samples.grid.visualRect(samples.thumbs.index(3))
    qtbot.mouseClick(samples.grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.selection.sample == 3
    act = w.panels["activations"].shown
    assert act["sample"] == 3 and np.array_equal(act["maps"], frame.activations["block2.conv"].maps[3])
    assert samples.shown["selected"] == 3
    # the selection survives a step: the new frame is shown for the same layer and sample
    with qtbot.waitSignal(w.frame_rendered, timeout=30_000):
        w.step(1)
    act = w.panels["activations"].shown
    assert act["layer"] == "block2.conv" and act["sample"] == 3
    assert np.array_equal(act["maps"], w.history.latest.activations["block2.conv"].maps[3])


def test_run_start_raises_the_panels_that_fit_the_model_and_data(cnn_run):
    """Image runs: Filters and Activations; 2-D data: the plane; recurrent models: their state;
    other sequence models: Inspect input; attention models: Attention."""
    import dataclasses

    from visualizer.ui.main_window import raised_tabs

    info = cnn_run.info
    assert raised_tabs(info) == ["filters", "activations"]
    assert raised_tabs(dataclasses.replace(info, data_kind="plane")) == ["plane", "activations"]
    seq = dataclasses.replace(info, data_kind="sequence")
    assert raised_tabs(dataclasses.replace(seq, recurrent_layers=["rnn1"])) == ["recurrent", "activations"]
    assert raised_tabs(dataclasses.replace(seq, attention_layers=["block1.attn"])) == ["inspect_input", "attention"]
    vit = dataclasses.replace(info, attention_layers=["block1.attn"])  # images through attention: kernels and maps
    assert raised_tabs(vit) == ["filters", "attention"]


def test_default_window_fits_a_900_pixel_high_screen(qtbot, tmp_path):
    """Every dock's minimum fits the default 1440 x 900 size (the layout is activated before sizing)."""
    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    assert (w.width(), w.height()) == (1440, 900)
    assert w.minimumSize().height() <= 900 and w.minimumSize().width() <= 1440
    w.close()
