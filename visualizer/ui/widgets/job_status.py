"""A one-line status for an analysis: what it is doing, a progress bar, Run and Cancel."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget


class JobStatus(QWidget):
    """Shows a ``JobUpdate``'s state; ``run_clicked`` and ``cancel_clicked`` ask for actions."""

    run_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, run_text: str = "Run", tooltip: str = "") -> None:
        super().__init__()
        self.run_button = QPushButton(run_text)
        self.run_button.setToolTip(tooltip)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this analysis after the piece of work in progress")
        self.cancel_button.setEnabled(False)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.label = QLabel("")
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long text must not widen the panel
        self.label.setMinimumWidth(60)
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label, 2)
        self.running = False

    def reset(self) -> None:
        """No job, nothing to cancel, no message (a new run)."""
        self.running = False
        self.cancel_button.setEnabled(False)
        self.bar.setValue(0)
        self._say("")

    def started(self, message: str = "starting…") -> None:
        self.running = True
        self.bar.setValue(0)
        self.label.setText(message)
        self.cancel_button.setEnabled(True)

    def _say(self, text: str, tooltip: str = "") -> None:
        self.label.setText(text)
        self.label.setToolTip(tooltip or text)

    def show_update(self, update: Any) -> None:
        """Reflect a JobUpdate (state, fraction, message, error)."""
        self.running = update.state == "running"
        self.cancel_button.setEnabled(self.running)
        if update.state == "running":
            self.bar.setValue(int(1000 * update.fraction))
            self._say(update.message or f"{update.done} of {update.total}")
        elif update.state == "done":
            self.bar.setValue(1000)
            step = (update.tag or {}).get("step")
            self._say("done" if step is None else f"done (weights of step {step:,})")
        elif update.state == "cancelled":
            self._say("cancelled")
        else:
            self._say(f"failed: {update.message}", update.error or update.message)
