"""``--run-steps N [--screenshot FILE]``: train N steps, let every panel draw, save, quit."""
from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


class ScriptedRun:
    """Drives a :class:`MainWindow` through one scripted run; ``exit_code`` says how it went."""

    def __init__(self, window: Any, steps: int, screenshot: str | None) -> None:
        self.window, self.steps, self.screenshot = window, steps, screenshot
        self.exit_code = 1
        window.error_dialogs = False  # errors go to the terminal, not to dialogs nobody can click
        window.run_started.connect(self._started)
        window.frame_rendered.connect(self._rendered)
        window.error_shown.connect(self._failed)
        self._done = False

    def _started(self, _info: Any) -> None:
        if self.steps > 0:
            self.window.step(self.steps)

    def _rendered(self, step: int) -> None:
        if self._done or step < self.steps:
            return
        self._done = True
        QTimer.singleShot(300, self._finish)  # one more paint of every panel

    def _finish(self) -> None:
        if self.screenshot:
            if not self.window.export_widget(self.window, self.screenshot):
                self.exit_code = 1
                QApplication.instance().quit()
                return
            print(f"saved {self.screenshot} at step {self.steps}")
        self.exit_code = 0
        self.window.close()
        QApplication.instance().quit()

    def _failed(self, message: str) -> None:
        print(f"visualizer: {message}", file=sys.stderr)
        self.exit_code = 1
        self.window.close()
        QApplication.instance().quit()
