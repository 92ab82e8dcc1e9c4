"""The running app, offscreen: ``throughput_ratio_app`` (steps/s while the window plays,
against the bare loop run in a worker thread while the app is paused), and during the
playing windows the UI stall (lateness of a 5 ms timer) and the latency from a capture to
the paint that puts it on screen.

The window is real and starts with the first-launch panel layout (a throwaway settings
file), so every panel of that layout renders every frame.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.loops import BareLoop
from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import PaintedLatency, Summary, interleave, percentile, rate, ratios
from benchmarks.workloads import Workload, run_each

KEYS = ("throughput_ratio_app", "ui_stall_p99_ms", "ui_stall_max_ms", "latency_p50_ms", "latency_p95_ms")
STALL_INTERVAL_MS = 5
START_TIMEOUT_S = 120.0
SETTLE_S = 0.15


def application() -> Any:
    """The process's QApplication, created offscreen on first use."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before Qt is imported
    from visualizer.ui.app import prepare_qt_environment

    prepare_qt_environment()  # as the app does
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    qInstallMessageHandler(_qt_message)
    _time_view_paints()
    return QApplication.instance() or QApplication([sys.argv[0]])


_paint_sink: Callable[[Any, float], None] | None = None  # (view, ms) while a UiCosts records


def _time_view_paints() -> None:
    """Wrap ``pyqtgraph.GraphicsView.paintEvent`` once, before any view exists (PySide binds
    a Python override when the object is created, so a later patch would not be seen)."""
    import pyqtgraph as pg

    paint = pg.GraphicsView.paintEvent
    if getattr(paint, "_benchmark_timed", False):
        return

    def timed_paint(view: Any, event: Any) -> Any:
        start = time.perf_counter()
        try:
            return paint(view, event)
        finally:
            if _paint_sink is not None:
                _paint_sink(view, (time.perf_counter() - start) * 1000.0)

    timed_paint._benchmark_timed = True  # type: ignore[attr-defined]
    pg.GraphicsView.paintEvent = timed_paint


def _qt_message(_mode: Any, _context: Any, message: str) -> None:
    """Qt's messages to stderr, less the offscreen plugin's notes on window size hints."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def pump(seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Run the Qt event loop for ``seconds``, or until ``until()`` holds (checked every 10 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    if until is not None and until():
        return
    loop = QEventLoop()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(int(seconds * 1000))
    check = QTimer()
    if until is not None:
        check.timeout.connect(lambda: until() and loop.quit())
        check.start(10)
    loop.exec()
    deadline.stop()
    check.stop()


class StallProbe:
    """A precise timer on the UI thread: how late each tick comes is how long the event
    loop was blocked (panels rendering, the GIL held by the training thread)."""

    def __init__(self, on_tick: Callable[[], None] | None = None) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.lateness_ms: list[float] = []
        self.on_tick = on_tick
        self._last: float | None = None
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(STALL_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = None
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.lateness_ms.append(max(0.0, (now - self._last) * 1000.0 - STALL_INTERVAL_MS))
        self._last = now
        if self.on_tick is not None:
            self.on_tick()


class UiCosts:
    """Milliseconds the UI thread spends per panel while recording: in ``render`` (each
    panel's, wrapped on the instance) and in painting its pyqtgraph views."""

    def __init__(self, panels: dict[str, Any]) -> None:
        global _paint_sink
        self.recording = False
        self.render_ms = dict.fromkeys(panels, 0.0)
        self.paint_ms = dict.fromkeys(panels, 0.0)
        self.screen = PaintedLatency()  # told of every view paint while recording
        self._owner = {id(panel): key for key, panel in panels.items()}
        self._views: dict[int, str | None] = {}
        for key, panel in panels.items():
            panel.render = self._timed_render(panel.render, key)
        _paint_sink = self._painted

    def close(self) -> None:
        global _paint_sink
        _paint_sink = None

    def _timed_render(self, render: Callable[..., Any], key: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return render(*args, **kwargs)
            finally:
                if self.recording:
                    self.render_ms[key] += (time.perf_counter() - start) * 1000.0

        return timed

    def _painted(self, view: Any, ms: float) -> None:
        if not self.recording:
            return
        self.screen.painted()
        if id(view) not in self._views:
            widget = view
            while widget is not None and id(widget) not in self._owner:
                widget = widget.parentWidget()
            self._views[id(view)] = None if widget is None else self._owner[id(widget)]
        key = self._views[id(view)]
        if key is not None:
            self.paint_ms[key] += ms

    def per_frame(self, frames: int) -> dict[str, dict[str, float]]:
        """Mean render and paint milliseconds per frame shown, by panel, costliest first."""
        if not frames:
            return {}
        rows = {k: {"render": self.render_ms[k] / frames, "paint": self.paint_ms[k] / frames} for k in self.render_ms}
        return dict(sorted(rows.items(), key=lambda kv: -sum(kv[1].values())))


class PlayingWindows:
    """Plays the app for timed windows and records what the UI went through meanwhile."""

    def __init__(self, window: Any, opts: Options) -> None:
        self.window, self.opts = window, opts
        self.stalls = StallProbe(on_tick=self._on_screen_yet)
        self.costs = UiCosts(window.panels)
        self.stall_windows: list[list[float]] = []
        self.rendered_windows: list[list[float]] = []  # capture → panels rendered (window.latencies_ms)
        self.latency_windows: list[list[float]] = []  # capture → views painted: the latency keys
        self._latency_ms: list[float] = []
        self.frames = 0
        self.seconds = 0.0
        self._rendered_ms: list[float] = []
        window.frame_rendered.connect(self._rendered)

    def close(self) -> None:
        self.costs.close()

    def _rendered(self, _step: int) -> None:
        if self.costs.recording:
            last = self.window.latencies_ms.last()
            if last is not None:
                self._rendered_ms.append(float(last))
            latest = self.window.history.latest
            if latest is not None:
                self.costs.screen.rendered(latest.time)

    def _on_screen_yet(self) -> None:
        latency = self.costs.screen.poll()
        if latency is not None:
            self._latency_ms.append(latency)

    def play(self, seconds: float, record: bool = True) -> float:
        """Play for ``seconds`` with the event loop running; the trainer's steps per second.

        The trainer runs in the app's worker process: its step count is read from the
        status it posts when idle, so it is exact at both ends of the window.
        """
        window = self.window
        session = window.runner.session
        steps = session.step
        shown = window.frames_shown
        self._rendered_ms, self._latency_ms = [], []
        self.costs.screen = PaintedLatency()
        if record:
            self.costs.recording = True
            self.stalls.lateness_ms = []
            self.stalls.start()
        start = time.perf_counter()
        window.set_playing(True)
        pump(seconds)
        window.set_playing(False)
        elapsed = time.perf_counter() - start
        self.stalls.stop()
        self.costs.recording = False
        self.pause()
        done = session.step - steps
        if record:
            self.stall_windows.append(self.stalls.lateness_ms)
            self.rendered_windows.append(self._rendered_ms)
            self.latency_windows.append(self._latency_ms)
            self.frames += window.frames_shown - shown
            self.seconds += elapsed
        return done / elapsed

    def pause(self) -> None:
        """Pause and wait until the loop is idle and the paused state has been drawn."""
        self.window.set_playing(False)
        session = self.window.runner.session
        pump(10.0, until=lambda: not session.busy)
        pump(SETTLE_S)


def bare_in_worker(bare: BareLoop, opts: Options, seconds: float) -> float:
    """The bare loop's steps/s in a worker thread set up like the trainer's, UI idle meanwhile."""
    from visualizer.engine.devices import flush_denormals

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            if opts.device_type == "cpu":  # as TrainingSession.serve does in its thread
                torch.set_num_threads(opts.threads)
            flush_denormals()
            outcome["rate"] = rate(bare.step, seconds, opts.device)
        except BaseException as exc:  # surfaced in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="benchmark-bare", daemon=True)
    worker.start()
    pump(seconds + 120.0, until=lambda: not worker.is_alive())
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rate"]


def open_window(workload: Workload, opts: Options, settings_path: str) -> Any:
    """A shown main window with fresh settings, its run built and its first frame drawn."""
    from PySide6.QtCore import QSettings

    from visualizer.ui.main_window import MainWindow

    window = MainWindow(settings=QSettings(settings_path, QSettings.Format.IniFormat))
    window.error_dialogs = False
    window.ask_before_discarding = False
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    window.show()
    window.start_run(workload.spec_dict(opts.device))
    pump(START_TIMEOUT_S, until=lambda: bool(errors) or window.history.latest is not None)
    if errors or window.history.latest is None:
        window.close()
        raise RuntimeError(errors[0] if errors else f"the {workload.key} run did not start in {START_TIMEOUT_S:.0f} s")
    return window


def measure(workload: Workload, opts: Options) -> list[Result]:
    application()
    with tempfile.TemporaryDirectory(prefix="visualizer-bench-") as tmp:
        window = open_window(workload, opts, os.path.join(tmp, "settings.ini"))
        windows = PlayingWindows(window, opts)
        try:
            from visualizer.engine.run import RunSpec, build_trainer

            # the app trains in its worker process: build the same run here for the bare loop
            bare = BareLoop(build_trainer(RunSpec.from_dict(workload.spec_dict(opts.device))))
            windows.play(opts.warmup_s, record=False)  # first captures and first paints are slow
            bare_in_worker(bare, opts, min(opts.warmup_s, 0.5))
            bare_rates, app_rates = interleave([lambda: bare_in_worker(bare, opts, opts.app_window_s),
                                                lambda: windows.play(opts.app_window_s)], opts.pairs)
        finally:
            windows.close()
            window.close()
            window.deleteLater()
            pump(0.1)
    return summarise(workload, opts, windows, bare_rates, app_rates)


def summarise(workload: Workload, opts: Options, windows: PlayingWindows, bare_rates: list[float],
              app_rates: list[float]) -> list[Result]:
    dev, threads = opts.device_type, opts.threads
    fps = windows.frames / windows.seconds if windows.seconds else float("nan")
    app_median, bare_median = Summary.of(app_rates).value, Summary.of(bare_rates).value
    costs = windows.costs.per_frame(windows.frames)
    top = list(costs.items())[:3]
    cost_note = ("UI ms/frame render+paint: " + ", ".join(f"{k} {c['render']:.0f}+{c['paint']:.0f}" for k, c in top)
                 if top else "no frame shown")

    def pooled(key: str, per_window: list[list[float]], q: float, note: str, **extra: Any) -> Result:
        values = [v for w in per_window for v in w]
        spread = [percentile(w, q) for w in per_window if w]
        result = Result(key, workload.key, percentile(values, q) if values else None, dev, threads, note=note,
                        extra={"samples": len(values), **extra})
        if len(spread) > 1:
            result.spread = (min(spread), max(spread))
        return result

    ticks = sum(len(w) for w in windows.stall_windows)
    rendered = [v for w in windows.rendered_windows for v in w]
    rendered_p50, rendered_p95 = percentile(rendered, 50), percentile(rendered, 95)
    rendered_note = f"; to panels rendered p50 {rendered_p50:.0f} / p95 {rendered_p95:.0f} ms" if rendered else ""
    return [
        Result.summarised("throughput_ratio_app", workload.key, Summary.of(ratios(app_rates, bare_rates)), dev, threads,
                          f"app {app_median:.0f} vs bare {bare_median:.0f} steps/s; {fps:.1f} frames/s shown",
                          app_steps_s=app_median, bare_steps_s=bare_median, frames_shown_per_s=fps),
        pooled("ui_stall_p99_ms", windows.stall_windows, 99, f"{STALL_INTERVAL_MS} ms timer, {ticks} ticks; {cost_note}",
               ui_ms_per_frame={k: {kind: round(ms, 2) for kind, ms in c.items()} for k, c in costs.items()}),
        pooled("ui_stall_max_ms", windows.stall_windows, 100, ""),
        pooled("latency_p50_ms", windows.latency_windows, 50,
               f"capture → views painted, {windows.frames} frames shown{rendered_note}",
               rendered_p50_ms=rendered_p50, rendered_p95_ms=rendered_p95),
        pooled("latency_p95_ms", windows.latency_windows, 95, ""),
    ]


def run(opts: Options) -> list[Result]:
    return run_each("app", KEYS, opts, lambda w: measure(w, opts))
