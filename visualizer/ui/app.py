"""Start the desktop app: check for a display, create the window, start the demo run."""
from __future__ import annotations

import os
import sys

HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


def display_problem() -> str | None:
    """A one-line explanation if no display can be reached (Linux/BSD), else None."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in HEADLESS_PLATFORMS:
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("visualizer: no display found (DISPLAY and WAYLAND_DISPLAY are unset). Train without a window with "
            "'visualizer train --help', or render off-screen with QT_QPA_PLATFORM=offscreen "
            "(e.g. 'QT_QPA_PLATFORM=offscreen visualizer --run-steps 100 --screenshot app.png').")


def prepare_qt_environment() -> None:
    """Settings Qt reads once, before the QApplication exists.

    Qt 6 hands alpha blending and image scaling to a private pool of helper threads. While
    training keeps the other cores busy, every hand-off waits for a core: a plot whose grid
    lines are semi-transparent took 4x the CPU and 10x the wall time to paint (2-core machine).
    The UI thread does its own drawing instead (``QT_NO_GUI_THREADPOOL``).
    """
    os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")


def launch(demo: str | None = None, run_steps: int | None = None, screenshot: str | None = None,
           loaded: object = None, data: str | None = None) -> int:
    """Run the app; with ``run_steps``, train that many steps, optionally save a screenshot, exit.

    ``loaded`` (a LoadedModel) opens that model in inspect mode instead of a demo run."""
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    prepare_qt_environment()
    from PySide6.QtWidgets import QApplication

    from visualizer.ui.main_window import MainWindow, default_spec

    try:
        spec = default_spec(demo)
    except ValueError as exc:
        print(f"visualizer: error: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("visualizer")
    app.setOrganizationName("visualizer")
    settings = None
    if run_steps is not None:  # scripted runs show the default layout and leave the person's settings alone
        import tempfile

        from PySide6.QtCore import QSettings

        scratch = tempfile.TemporaryDirectory(prefix="visualizer-")
        settings = QSettings(os.path.join(scratch.name, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    fallback = None
    if demo is None and run_steps is None and window.last_spec():
        spec, fallback = window.last_spec(), spec  # the demo if the saved run cannot be rebuilt
    window.show()
    if os.environ.get("VISUALIZER_REPORT_STARTUP"):  # for the start-up benchmark
        app.processEvents()
        print("window-shown", flush=True)
    if run_steps is not None:
        from visualizer.ui.scripted import ScriptedRun

        script = ScriptedRun(window, run_steps, screenshot)
        _start(window, spec, loaded, data)
        app.exec()
        return script.exit_code
    _start(window, spec, loaded, data, fallback)
    return app.exec()


def _start(window: object, spec: dict, loaded: object, data: str | None, fallback: dict | None = None) -> None:
    if loaded is None:
        window.start_run(spec, fallback)
    elif not window.open_loaded(loaded, data):
        window.start_run(spec)  # the model did not fit its data: the message is shown, the demo runs
