"""The controls of a repeated analysis: Run now, Cancel, progress, and an "auto-refresh"
check box with the rule for re-running by itself while training runs."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

from visualizer.ui.widgets.job_status import JobStatus


class AutoRefresh(QCheckBox):
    """Checked: an analysis is due again when the previous job has finished, the training
    step changed since the last request, and at least ``interval_s`` (or twice as long as
    the last job took, if longer) passed since that request. So it follows training at a
    modest rate, costs at most about half a core, and never piles up requests while paused."""

    def __init__(self, interval_s: float = 10.0, checked: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("auto-refresh")
        self.setChecked(checked)
        self.setToolTip(f"While training runs, run this analysis again about every {interval_s:g} s "
                        "on a snapshot of the newest weights")
        self.interval_s = interval_s
        self.clock = clock
        self.last_step: int | None = None
        self.last_time = -math.inf
        self.last_duration = 0.0  # how long the last finished job took

    def due(self, step: int | None, busy: bool) -> bool:
        """Whether to request again now, for the newest frame's ``step``."""
        if not self.isChecked() or busy or step is None:
            return False
        if self.last_step is not None and step == self.last_step:
            return False
        return self.clock() - self.last_time >= max(self.interval_s, 2.0 * self.last_duration)

    def requested(self, step: int | None) -> None:
        """Note a request (automatic or not) for the weights of ``step``."""
        self.last_step = step
        self.last_time = self.clock()

    def finished(self) -> None:
        """Note that the job last requested has ended (done, failed or cancelled)."""
        if math.isfinite(self.last_time):
            self.last_duration = max(0.0, self.clock() - self.last_time)

    def reset(self) -> None:
        self.last_step, self.last_time, self.last_duration = None, -math.inf, 0.0


class AnalysisControls(QWidget):
    """A :class:`JobStatus` (Run now, Cancel, progress) beside an :class:`AutoRefresh` box.

    The panel calls :meth:`started` when it requests, :meth:`show_update` with every update
    it receives, and asks :meth:`due` on each new frame.
    """

    run_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, run_text: str = "Run now", tooltip: str = "", interval_s: float = 10.0,
                 auto: bool = True) -> None:
        super().__init__()
        self.status = JobStatus(run_text, tooltip)
        self.refresh = AutoRefresh(interval_s, auto)
        self.status.run_clicked.connect(self.run_clicked)
        self.status.cancel_clicked.connect(self._cancel)
        self._cancel_asked = False
        self.status.bar.setMinimumWidth(40)
        self.status.bar.setMaximumWidth(40)
        for button in (self.status.run_button, self.status.cancel_button):  # no wider than their text
            button.setMaximumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 24)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status, 1)
        layout.addWidget(self.refresh)

    @property
    def running(self) -> bool:
        return self.status.running

    def due(self, step: int | None) -> bool:
        return self.refresh.due(step, self.status.running)

    def started(self, step: int | None, message: str = "starting…") -> None:
        self._cancel_asked = False
        self.refresh.requested(step)
        self.status.started(message)

    def show_update(self, update: Any) -> bool:
        """Show ``update``; False (and nothing shown) for the cancellation of a job that a
        newer request replaced, which the person did not ask for."""
        if update.state == "cancelled" and not self._cancel_asked:
            return False
        self.status.show_update(update)
        if update.state != "running":
            self.refresh.finished()
        return True

    def reset(self) -> None:
        """No job, nothing to cancel, nothing requested yet (a new run)."""
        self.status.reset()
        self.refresh.reset()
        self._cancel_asked = False

    def _cancel(self) -> None:
        self._cancel_asked = True
        self.cancel_clicked.emit()
