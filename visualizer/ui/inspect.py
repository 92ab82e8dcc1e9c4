"""``visualizer.show(model)``: the app on a live model from a script or notebook, in this process."""
from __future__ import annotations

import sys
from typing import Any


def show(model: Any, data: Any = None, inputs: Any = None, block: bool = True) -> Any:
    """Open a window on ``model`` (an nn.Module or a LoadedModel) in inspect mode.

    The model trains in a thread of this process only when the person presses play or
    step. ``block``: run the event loop until the window closes (scripts); otherwise return
    the window (notebooks with a Qt event loop). ValueError when the data does not fit.
    """
    from PySide6.QtWidgets import QApplication

    from visualizer.capture.inspect import inspect_session
    from visualizer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    try:
        session = inspect_session(model, data=data, inputs=inputs, mailbox=window.mailbox)
    except ValueError:
        window.close()
        raise
    window.show_session(session)
    window.runner.session.request_gradients()  # gradients for the probe inputs, without a training step
    window.spec = None
    name = type(getattr(model, "module", model)).__name__
    window.setWindowTitle(f"visualizer: {name} (live model)")
    window.statusBar().showMessage(f"{name} on {session.trainer.dataset.name}: inspecting. Press play to train it.", 15000)
    window.show()
    if block:
        app.exec()
    return window
