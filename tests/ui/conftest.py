"""Real runs for panel tests: a tiny CNN on a small shapes set and an MLP on spiral,
trained a few steps through the real TrainingSession, with their frames and RunInfo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class RunFixture:
    session: Any
    info: Any
    frame: Any  # a frame captured on a training step (has gradients)


def _make_run(model: str, data: str, model_options: dict, data_options: dict, steps: int = 3) -> RunFixture:
    import torch

    from visualizer.capture.session import CaptureSettings, TrainingSession
    from visualizer.engine.run import RunSpec, build_trainer
    from visualizer.engine.trainer import TrainConfig

    torch.set_num_threads(1)
    spec = RunSpec(model=model, data=data, model_options=model_options, data_options=data_options,
                   config=TrainConfig(batch_size=32, lr=2e-3), device="cpu")
    trainer = build_trainer(spec)
    session = TrainingSession(trainer, settings=CaptureSettings(max_rate_hz=1e9, budget=1.0, probe_size=8, val_interval_s=0.0))
    session.run(steps - 1)
    session.arm()
    frame = session.step()
    session.mailbox.take("train")
    info = session.run_info()
    info.run_spec = spec.to_dict()
    return RunFixture(session, info, frame)


@pytest.fixture(scope="session")
def cnn_run() -> RunFixture:
    return _make_run("cnn", "shapes", {"channels": [8, 16], "hidden": 32}, {"n_train": 256, "n_val": 64})


@pytest.fixture(scope="session")
def mlp_run() -> RunFixture:
    return _make_run("mlp", "spiral", {"depth": 2, "width": 16}, {"n_samples": 300})


@pytest.fixture()
def panel_context(qtbot):
    from visualizer.stream.history import RunHistory
    from visualizer.ui.panels.base import PanelContext
    from visualizer.ui.selection import Selection

    return PanelContext(Selection(), RunHistory())


def show_panel(qtbot, cls, context, run: RunFixture):
    """Create a panel, give it the run and its frame, as the main window would."""
    panel = cls(context)
    qtbot.addWidget(panel)
    panel.resize(640, 480)
    panel.show()
    panel.set_run(run.info)
    context.history.ingest(run.frame)
    context.selection.set(layer=run.info.layers[0].name, sample=0)
    panel.render(run.frame)
    return panel


def make_window(qtbot, tmp_path):
    """The real main window with throwaway settings, no modal dialogs, shown."""
    from PySide6.QtCore import QSettings

    from visualizer.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.error_dialogs = False
    w.ask_before_discarding = False
    qtbot.addWidget(w)
    w.show()
    return w
