"""The transport toolbar: play/pause, step, step N, run to end of epoch, reset, speed limit."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QSpinBox, QStyle, QToolBar, QWidget


class TransportBar(QToolBar):
    """Buttons with shortcuts in their tooltips; emits requests, holds no training state."""

    play_toggled = Signal(bool)
    step_requested = Signal(int)
    epoch_requested = Signal()
    reset_requested = Signal()
    speed_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("transport")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        style = self.style()

        def action(text: str, icon: QStyle.StandardPixmap, shortcut: str, tip: str) -> QAction:
            a = QAction(style.standardIcon(icon), text, self)
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})")
            self.addAction(a)
            return a

        self.play = action("Play", QStyle.StandardPixmap.SP_MediaPlay, "Space", "Train continuously; press again to pause")
        self.play.setCheckable(True)
        self.play.toggled.connect(self._play_toggled)
        self.step = action("Step", QStyle.StandardPixmap.SP_MediaSeekForward, "Right", "Train exactly one batch, then pause")
        self.step.triggered.connect(lambda: self.step_requested.emit(1))
        self.step_n_box = QSpinBox()
        self.step_n_box.setRange(1, 100000)
        self.step_n_box.setValue(10)
        self.step_n_box.setToolTip("Number of batches for 'Step N'")
        self.addWidget(self.step_n_box)
        self.step_n = action("Step N", QStyle.StandardPixmap.SP_MediaSkipForward, "Shift+Right", "Train N batches, then pause")
        self.step_n.triggered.connect(lambda: self.step_requested.emit(self.step_n_box.value()))
        self.epoch = action("To epoch end", QStyle.StandardPixmap.SP_ArrowRight, "Ctrl+E", "Train to the end of the current epoch, then pause")
        self.epoch.triggered.connect(self.epoch_requested)
        self.addSeparator()
        self.reset = action("Reset weights", QStyle.StandardPixmap.SP_BrowserReload, "Ctrl+R", "Back to the initial weights of this run (same seed)")
        self.reset.triggered.connect(self.reset_requested)
        self.addSeparator()
        self.addWidget(QLabel(" Speed limit "))
        self.speed = QSpinBox()
        self.speed.setRange(0, 10000)
        self.speed.setSpecialValueText("unlimited")
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Slow training down to watch it (0 = as fast as possible)")
        self.speed.valueChanged.connect(lambda v: self.speed_changed.emit(float(v)))
        self.addWidget(self.speed)

    def _play_toggled(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play.setIcon(self.style().standardIcon(icon))
        self.play.setText("Pause" if playing else "Play")
        self.play_toggled.emit(playing)

    def set_playing(self, playing: bool) -> None:
        """Reflect the state without emitting a request."""
        if self.play.isChecked() != playing:
            self.play.blockSignals(True)
            self.play.setChecked(playing)
            self.play.blockSignals(False)
            icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
            self.play.setIcon(self.style().standardIcon(icon))
            self.play.setText("Pause" if playing else "Play")

    def set_enabled(self, enabled: bool) -> None:
        for a in (self.play, self.step, self.step_n, self.epoch, self.reset):
            a.setEnabled(enabled)
