"""The main window: docks for the panels, the transport bar, menus and the status bar.

A ~30 Hz timer is the bridge to the training thread: it arms a capture, takes
the newest frame from the mailbox, feeds the run history and asks visible panels to
render. A frame's arrival also starts a tick at once (``Mailbox.on_put`` emits a queued
signal), so a frame never waits for the timer. Panels never talk to each other; they share one :class:`Selection`.
"""
from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from visualizer.stream.buffers import RingBuffer
from visualizer.stream.frames import Frame, RunInfo
from visualizer.stream.history import RunHistory
from visualizer.stream.mailbox import Mailbox
from visualizer.ui.panels import AnalysisPanel, Panel, PanelContext, panel_classes
from visualizer.ui.runner import DEFAULT_DEMO, DEMOS, Runner
from visualizer.ui.selection import Selection
from visualizer.ui.transport import TransportBar

TICK_MS = 33
RENDER_BUDGET_MS = 12.0
FOLLOW_UP_MS = 1  # a turn of the event loop (input, paint) between render turns, no idle wait
LAYOUT_VERSION = 4  # bump when panels are added or removed: older saved layouts are then ignored


class MainWindow(QMainWindow):
    """The app window. ``start_run(spec)`` builds a run in the background and shows it."""

    run_started = Signal(object)  # RunInfo
    frame_rendered = Signal(int)  # step
    error_shown = Signal(str)
    _posted = Signal(str)  # emitted from the mailbox's writer thread; runs in the UI thread

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("visualizer: watch a neural network learn")
        self.settings = settings or QSettings("visualizer", "visualizer")
        self.mailbox = Mailbox()
        self._posted.connect(self._frame_posted, Qt.ConnectionType.QueuedConnection)
        self.mailbox.on_put = self._notify_posted
        self.runner = Runner(self.mailbox)
        self.selection = Selection()
        self.history = RunHistory()
        self.context = PanelContext(self.selection, self.history)
        self.run: RunInfo | None = None
        self.spec: dict[str, Any] | None = None
        self.playing = False
        self.ask_before_discarding = True  # confirm before a new run replaces a trained one
        self.error_dialogs = True  # False: errors go to the status bar and error_shown only
        self.frames_shown = 0
        self.latencies_ms = RingBuffer(512)
        self._frame: Frame | None = None  # the newest frame
        self._dirty: set[str] = set()  # panels that do not show it yet
        self._rendered_at: dict[str, float] = {}
        self._announced = 0
        self._follow_up = False
        self._fallback: dict[str, Any] | None = None  # started if the run being built fails (see start_run)
        self._rate = (time.monotonic(), 0)
        self._steps_per_s = 0.0

        self.transport = TransportBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.transport)
        self.transport.set_enabled(False)
        self.transport.play_toggled.connect(self.set_playing)
        self.transport.step_requested.connect(self.step)
        self.transport.epoch_requested.connect(self._to_epoch_end)
        self.transport.reset_requested.connect(self.reset_weights)
        self.transport.speed_changed.connect(lambda v: self._session_call("set_speed_limit", v or None))

        self.panels: dict[str, Panel] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.setDockNestingEnabled(True)
        self.setCentralWidget(None)
        for cls in panel_classes():
            self._add_panel(cls(self.context))
        self._default_layout()
        self._default_state = self.saveState(LAYOUT_VERSION)
        from visualizer.ui.open_model import ModelOpener

        self.opener = ModelOpener(self)
        self.setAcceptDrops(True)  # a model file dropped on the window opens
        self._build_menus()
        self._build_status_bar()
        self.selection.changed.connect(self._selection_changed)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._restore_settings()

    # ------------------------------------------------------------------ layout
    def _add_panel(self, panel: Panel) -> None:
        dock = QDockWidget(panel.title, self)
        dock.setObjectName(f"dock-{panel.key}")
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        dock.visibilityChanged.connect(lambda visible, k=panel.key: visible and self._became_visible(k))
        if hasattr(panel, "run_requested"):
            panel.run_requested.connect(self.confirm_new_run)
        if hasattr(panel, "setting_changed"):
            panel.setting_changed.connect(self.change_setting)
        if isinstance(panel, AnalysisPanel):
            panel.analysis_requested.connect(lambda name, kind, params: self._session_call("request_analysis", name, kind, params))
            panel.analysis_cancelled.connect(lambda name: self._session_call("cancel_analysis", name))
        self.panels[panel.key] = panel
        self.docks[panel.key] = dock
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _default_layout(self) -> None:
        """Left: layers and samples; middle: activations over filters; right: metrics over gradients."""
        d = self.docks
        order = [k for k in ("layers", "activations", "metrics") if k in d]
        for k in d:
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d[k])
            d[k].show()
        for a, b in zip(order, order[1:]):
            self.splitDockWidget(d[a], d[b], Qt.Orientation.Horizontal)
        below = {"layers": "samples", "activations": "filters", "metrics": "gradients"}
        for top, bottom in below.items():
            if top in d and bottom in d:
                self.splitDockWidget(d[top], d[bottom], Qt.Orientation.Vertical)
        tabs = {"layers": ["setup"], "filters": ["plane", "recurrent", "inspect_input"],
                "activations": ["top_examples", "features", "attribution", "attention"],
                "metrics": ["probes", "representations", "finetune"], "gradients": ["selectivity", "drawing"]}
        for host, guests in tabs.items():
            for g in guests:
                if host in d and g in d:
                    self.tabifyDockWidget(d[host], d[g])
        for host in tabs:
            if host in d:
                d[host].raise_()
        # the layout's minimum is stale until activated: without this the window grows past 900 px high
        self.layout().activate()
        widths = [d[k] for k in order]
        if widths:
            self.resizeDocks(widths, [330, 640, 440][: len(widths)], Qt.Orientation.Horizontal)
        self.resize(1440, 900)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._menu_action(file, "&New run…", "Ctrl+N", self.show_setup)
        self._menu_action(file, "&Open model…", "Ctrl+O", self.opener.choose)
        examples = file.addMenu("Open &example")
        from visualizer.examples import example_models

        for name, path in example_models().items():
            examples.addAction(name, lambda p=path: self.opener.open_path(p))
        examples.setEnabled(bool(example_models()))
        demos = file.addMenu("Open &demo")
        for name in DEMOS:
            demos.addAction(name, lambda n=name: self.confirm_new_run(DEMOS[n]))
        self._menu_action(file, "&Save model…", "Ctrl+S", self.save_model)
        file.addSeparator()
        self._menu_action(file, "&Export window as image…", "Ctrl+Shift+E", lambda: self.export_widget(self))
        panels = file.addMenu("Export &panel as image")
        for key, panel in self.panels.items():
            panels.addAction(panel.title, lambda p=panel: self.export_widget(p))
        file.addSeparator()
        self._menu_action(file, "&Quit", "Ctrl+Q", self.close)
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self._menu_action(view, "&Reset layout", "", self.reset_layout)
        helpm = bar.addMenu("&Help")
        self._menu_action(helpm, "&Keyboard shortcuts", "F1", self.show_shortcuts)
        self._menu_action(helpm, "&About", "", self.show_about)

    def _menu_action(self, menu: Any, text: str, shortcut: str, slot: Any) -> QAction:
        action = menu.addAction(text)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_status_bar(self) -> None:
        self.status_labels: dict[str, QLabel] = {}
        for key in ("step", "epoch", "rate", "device", "frames"):
            label = QLabel("")
            label.setMinimumWidth(90)
            self.status_labels[key] = label
            self.statusBar().addPermanentWidget(label)
        self.statusBar().showMessage("Preparing the demo run…")

    # ------------------------------------------------------------------ runs
    def start_run(self, spec: dict[str, Any], fallback: dict[str, Any] | None = None) -> None:
        """Build a run from ``spec`` in the background; it replaces the current one when ready.

        ``fallback`` is started instead if ``spec`` cannot be built and no run is shown
        (e.g. a saved last run whose settings no longer make sense).
        """
        self._fallback = fallback
        self.set_playing(False)
        self.statusBar().showMessage("Building the run (dataset and model)…")
        self.transport.set_enabled(False)
        self.runner.build(spec)

    def show_session(self, session: Any) -> None:
        """Show a TrainingSession made in this process (a live model from a script), served by a thread."""
        self.set_playing(False)
        self.runner.serve_here(session)
        self._adopt({"session": self.runner.session, "info": session.run_info(), "spec": {}})
        self.runner.session.request_capture()

    def open_loaded(self, loaded: Any, data: str | None = None) -> bool:
        """Show a LoadedModel in inspect mode (no training until play); False with a message if it cannot be."""
        from visualizer.capture.inspect import inspect_session

        try:
            session = inspect_session(loaded, data=data, mailbox=self.mailbox)
        except ValueError as exc:
            self.show_error(f"Could not open {loaded.path.name}: {exc}")
            return False
        self.show_session(session)
        self.runner.session.request_gradients()  # gradients for the probe inputs, without a training step
        self.spec = None  # not a run that a spec rebuilds
        self.setWindowTitle(f"visualizer: {loaded.path.name} ({loaded.kind})")
        notes = " ".join(f"Not available: {n}." for n in loaded.unavailable)
        self.statusBar().showMessage(f"Opened {loaded.path.name} ({loaded.kind}) on {session.trainer.dataset.name}. "
                                     f"Inspecting: press play to fine-tune. {notes}", 15000)
        if notes and self.error_dialogs:
            QMessageBox.information(self, f"{loaded.path.name}: what can be shown", notes)
        return True

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.opener.open_path(urls[0])

    def confirm_new_run(self, spec: dict[str, Any]) -> None:
        """Ask before throwing away a run that has trained; then start the new one."""
        trained = self.history.latest is not None and self.history.latest.step > 0
        if trained and self.ask_before_discarding:
            answer = QMessageBox.question(self, "Start a new run?",
                                          "Changing the model or dataset starts a new run from scratch. Continue?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.start_run(spec)

    def _adopt(self, message: dict[str, Any]) -> None:
        session, info = message["session"], message["info"]
        self._fallback = None
        self.runner.adopt(session)
        self.run, self.spec = info, message["spec"]
        self.history.clear()
        self.frames_shown = 0
        self._frame, self._dirty = None, set()
        for panel in self.panels.values():
            panel.set_run(info)
        layer = self.selection.layer if self.selection.layer in info.layer_names else info.layers[0].name
        self.selection.set(layer=layer, channel=None, sample=0, target=None, head=None)
        self.status_labels["device"].setText(info.device)
        for shown in raised_tabs(info):
            if shown in self.docks:
                self.docks[shown].raise_()
        self.transport.set_enabled(True)
        self.statusBar().showMessage(
            f"{info.model_name} on {info.data_name}: {info.num_params:,} parameters, {info.init_scheme} init. "
            "Press Space to train, → for one step.", 8000)
        self.run_started.emit(info)
        freeze_long_lived()

    # ------------------------------------------------------------------ transport
    def _session_call(self, name: str, *args: Any) -> None:
        if self.runner.session is not None:
            getattr(self.runner.session, name)(*args)

    def set_playing(self, playing: bool) -> None:
        self.playing = bool(playing) and self.runner.session is not None
        self.transport.set_playing(self.playing)
        self._session_call("play" if self.playing else "pause")

    def step(self, n: int = 1) -> None:
        self.set_playing(False)
        self._session_call("step_n", n)

    def _to_epoch_end(self) -> None:
        self.set_playing(False)
        self._session_call("run_to_epoch_end")

    def reset_weights(self) -> None:
        self.set_playing(False)
        self._session_call("submit", "reset")
        self.history.clear()
        self._frame, self._dirty = None, set()

    def change_setting(self, name: str, value: Any) -> None:
        """A live hyperparameter change, applied by the trainer before its next step."""
        self._session_call("submit", name, value)
        if self.spec is not None and name not in ("dropout", "frozen"):
            self.spec.setdefault("config", {})[name] = value
        self.statusBar().showMessage(f"{name} → {value} (applies at the next step)", 4000)

    # ------------------------------------------------------------------ the tick
    def _notify_posted(self, stream: str) -> None:
        """Called by the mailbox's writer (a receiver or training thread)."""
        if stream == "train":
            try:
                self._posted.emit(stream)
            except RuntimeError:
                pass  # the window is being destroyed

    def _frame_posted(self, stream: str) -> None:
        self.tick()

    def tick(self) -> None:
        """Poll the mailbox: new runs, errors, notices, then the newest frame."""
        run = self.mailbox.take("run")
        if run is not None:
            self._adopt(run)
        error = self.mailbox.take("error")
        if error is not None:
            self.runner.discard_failed()
            fallback = self._fallback
            if fallback is not None and self.runner.session is None and error.get("step") is None:
                self.start_run(fallback)  # the saved run could not be rebuilt: open the demo instead
            culprit = (error.get("nonfinite") or {}).get("layer")
            if self.run is not None and culprit in self.run.layer_names:
                self.selection.set(layer=culprit)  # every panel shows where the NaN began
            self.show_error(error["message"])
        status = self.mailbox.take("status")
        session = self.runner.session
        if status is not None and not status["busy"] and self.playing and session is not None \
                and status["controls"] >= session.controls_sent:
            self.set_playing(False)  # the worker paused by itself (it diverged, or a step failed)
        notice = self.mailbox.take("notice")
        if notice is not None:
            self.statusBar().showMessage(notice["message"], 6000)
        if session is None:
            return
        session.arm()  # harmless while idle: only a step can be captured
        updates: dict[str, Any] = {}  # one take per analysis; every panel that lists it gets the update
        for panel in self.panels.values():
            if isinstance(panel, AnalysisPanel):
                for name in panel.analyses:
                    if name not in updates:
                        updates[name] = self.mailbox.take(f"analysis:{name}")
                    if updates[name] is not None:
                        panel.receive(updates[name])
        frame: Frame | None = self.mailbox.take("train")
        if frame is not None:
            self.history.ingest(frame)
            self._frame = frame
            self._dirty = set(self.panels)
            self._update_status(frame)
        self._render_due()

    def _render_due(self) -> None:
        """Render panels that have a newer frame than they show, spread over ticks.

        Each tick renders panels, those waiting longest first, until RENDER_BUDGET_MS is
        spent, and no panel more often than its ``max_fps``: one event-loop turn never
        carries every panel's drawing, so the window stays responsive. Panels still due are
        drawn FOLLOW_UP_MS later. When every visible panel that is not held back
        by its rate shows the newest frame, ``frame_rendered`` is emitted.
        """
        frame = self._frame
        if frame is None:
            return
        now = time.monotonic()
        spent = 0.0
        for key in sorted(self._dirty, key=lambda k: self._rendered_at.get(k, 0.0)):
            panel = self.panels[key]
            if not self._on_screen(key):
                continue  # rendered when it is shown (visibilityChanged)
            if not self._due(key, now) or spent > RENDER_BUDGET_MS:
                continue
            if panel.heavy and spent > 0:
                continue  # its paint is costly: it gets a tick of its own
            t0 = time.perf_counter()
            self._render_panel(panel, frame)
            spent += (time.perf_counter() - t0) * 1000.0
            self._rendered_at[key] = now
            self._dirty.discard(key)
            if panel.heavy:
                spent = RENDER_BUDGET_MS + 1  # nothing else in this turn
        now = time.monotonic()
        waiting = [k for k in self._dirty if self._on_screen(k) and self._due(k, now)]
        if waiting and not self._follow_up:
            # more to draw: soon, not at the next tick, but after a gap that lets the event
            # loop paint and answer input in between
            self._follow_up = True
            QTimer.singleShot(FOLLOW_UP_MS, self._follow_up_render)
        if not waiting and self._announced != id(frame):
            self._announced = id(frame)
            self.frames_shown += 1
            self.latencies_ms.append((time.monotonic() - frame.time) * 1000.0)
            self.frame_rendered.emit(frame.step)

    def _due(self, key: str, now: float) -> bool:
        """While playing, not rendered more recently than its panel's ``max_fps`` allows (it
        catches up later); when paused or stepping, every frame is due everywhere."""
        if not self.playing:
            return True
        return now - self._rendered_at.get(key, 0.0) >= 1.0 / self.panels[key].max_fps

    def _follow_up_render(self) -> None:
        self._follow_up = False
        self._render_due()

    def _became_visible(self, key: str) -> None:
        self._render_panel(self.panels[key])
        self._dirty.discard(key)

    def _on_screen(self, key: str) -> bool:
        """Visible and not hidden behind another dock's tab."""
        return self.docks[key].isVisible() and not self.panels[key].visibleRegion().isEmpty()

    def _render_panel(self, panel: Panel, frame: Frame | None = None) -> None:
        if self.run is None or not self.docks[panel.key].isVisible():
            return
        try:
            panel.render(frame if frame is not None else self.history.latest)
            panel.settle()  # its views paint once each, with the others' changed in this turn
        except Exception as exc:  # a panel bug must not take the window down
            self.statusBar().showMessage(f"{panel.title} could not draw this frame: {exc}", 8000)

    def _selection_changed(self, changed: frozenset[str]) -> None:
        for panel in self.panels.values():
            if self.docks[panel.key].isVisible() and self.run is not None:
                try:
                    panel.selection_changed(changed)
                except Exception as exc:
                    self.statusBar().showMessage(f"{panel.title} could not follow the selection: {exc}", 8000)

    def _update_status(self, frame: Frame) -> None:
        now = time.monotonic()
        t0, s0 = self._rate
        if now - t0 >= 0.5:
            self._steps_per_s = max(0.0, (frame.step - s0) / (now - t0))
            self._rate = (now, frame.step)
        dropped = self.mailbox.dropped.get("train", 0)
        self.status_labels["step"].setText(f"step {frame.step:,}")
        self.status_labels["epoch"].setText(f"epoch {frame.epoch:.2f}")
        self.status_labels["rate"].setText(f"{self._steps_per_s:,.0f} steps/s" if self.playing else "paused")
        self.status_labels["frames"].setText(f"frames {self.frames_shown:,} shown, {dropped:,} dropped")

    # ------------------------------------------------------------------ dialogs
    def show_error(self, message: str) -> None:
        """Training stopped or a request failed: say so, keep the window usable."""
        self.set_playing(False)
        self.statusBar().showMessage(message, 15000)
        self.error_shown.emit(message)
        if self.error_dialogs:
            box = QMessageBox(QMessageBox.Icon.Warning, "Something went wrong", message, parent=self)
            box.setInformativeText("Training is paused. Change the settings or reset, then continue.")
            box.setModal(False)
            box.show()
        if self.runner.session is not None:
            self.transport.set_enabled(True)

    def show_setup(self) -> None:
        if "setup" in self.docks:
            self.docks["setup"].show()
            self.docks["setup"].raise_()

    def save_model(self) -> None:
        if self.runner.session is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.safetensors", "Checkpoints (*.safetensors)")
        if path:
            self.runner.session.save(path, {"run": self.spec or {}})

    def export_widget(self, widget: QWidget, path: str | None = None) -> bool:
        """Save a window or panel as PNG or SVG (chosen by the file name)."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export image", "visualizer.png", "PNG image (*.png);;SVG image (*.svg)")
            if not path:
                return False
        from visualizer.ui.export import save_widget_image

        try:
            save_widget_image(widget, path)
        except OSError as exc:
            self.show_error(f"Could not write {path}: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def show_shortcuts(self) -> None:
        rows = [("Space", "Play / pause"), ("→", "Step one batch"), ("Shift+→", "Step N batches"),
                ("Ctrl+E", "Run to the end of the epoch"), ("Ctrl+R", "Reset weights"), ("Ctrl+N", "New run"),
                ("Ctrl+S", "Save model"), ("Ctrl+Shift+E", "Export the window as an image"), ("F1", "This list"),
                ("Ctrl+Q", "Quit")]
        text = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{text}</table>")

    def show_about(self) -> None:
        from visualizer import __version__

        QMessageBox.about(self, "About visualizer",
                          f"<b>visualizer {__version__}</b><p>Watch a neural network learn: live activations, "
                          "gradients, filters and metrics, layer by layer.</p>")

    # ------------------------------------------------------------------ settings and closing
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def last_spec(self) -> dict[str, Any] | None:
        """The last run's spec from the settings, or None if it is missing or not a JSON object."""
        raw = self.settings.value("run/spec")
        try:
            spec = json.loads(raw) if isinstance(raw, str) else None
        except (json.JSONDecodeError, RecursionError):
            return None
        return spec if isinstance(spec, dict) else None

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        self.mailbox.on_put = None
        self.runner.stop()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        if self.spec is not None:
            self.settings.setValue("run/spec", json.dumps(self.spec))
        self.settings.sync()
        super().closeEvent(event)


def raised_tabs(info: RunInfo) -> list[str]:
    """The panels brought to the front of their tab groups when a run starts: the ones that
    have the most to show for this kind of model and data."""
    if info.data_kind == "plane":
        below = "plane"
    elif info.recurrent_layers:
        below = "recurrent"
    elif info.data_kind == "sequence":
        below = "inspect_input"  # no kernels to draw: type a sequence and see what the model does
    else:
        below = "filters"
    return [below] + (["attention"] if info.attention_layers else ["activations"])


def freeze_long_lived() -> None:
    """Take every object alive now (modules, widgets, the new run's panel items: about 230,000)
    out of the garbage collector's sight. A full collection then scans only what was made since:
    0.1 ms instead of 130 ms in the MLP demo's window, where it would stop the window's event loop."""
    import gc

    gc.unfreeze()  # the previous run's objects may be garbage now: collect them first
    gc.collect()
    gc.freeze()


def default_spec(demo: str | None) -> dict[str, Any]:
    """The spec of a named demo (ValueError listing the names if unknown)."""
    name = demo or DEFAULT_DEMO
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; choose one of {', '.join(DEMOS)}")
    return json.loads(json.dumps(DEMOS[name]))
