"""``startup_s``: from spawning ``python -m visualizer`` to its main window being shown.

With ``VISUALIZER_REPORT_STARTUP=1`` the app prints ``window-shown <seconds since process
start>`` right after showing the window; the benchmark times that line's arrival from the
spawn (and keeps the app's own figure as a cross-check). Without the line it falls back
to spawn-to-exit of ``--run-steps 0`` (which also builds the run and renders a frame) and
says so. A fresh HOME / XDG_CONFIG_HOME keeps settings of earlier launches out.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Summary

KEYS = ("startup_s",)
MARKER = "window-shown"
RUNS = 3
TIMEOUT_S = 120.0
REPO = Path(__file__).resolve().parent.parent
COMMAND = (sys.executable, "-m", "visualizer", "--run-steps", "0")


@dataclass(frozen=True)
class Launch:
    """One launch: seconds from spawn to the marker line (or to exit), and what came with it."""

    seconds: float
    marked: bool
    reported_s: float | None = None  # the app's own "seconds since process start"
    exit_code: int | None = None
    problem: str = ""  # the last line on stderr, when there was no marker line


def launch_once(home: str, command: Sequence[str] = COMMAND) -> Launch:
    """Spawn the app with a fresh HOME; stop it as soon as it reports its window shown."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VISUALIZER_REPORT_STARTUP": "1",
           "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config")}
    with tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(command), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        watchdog = threading.Timer(TIMEOUT_S, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(MARKER):
                    seen = time.monotonic() - start
                    own = line.split()[1:2]
                    return Launch(seen, True, float(own[0]) if own else None)
            code = proc.wait()
            elapsed = time.monotonic() - start
            err.seek(0)
            lines = [l for l in err.read().splitlines() if l.strip() and "propagateSizeHints" not in l]
            return Launch(elapsed, False, exit_code=code, problem=lines[-1][:100] if lines else "")
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait()


def run(opts: Options) -> list[Result]:
    launches = []
    for i in range(RUNS):
        opts.log(f"startup: launch {i + 1}/{RUNS}")
        with tempfile.TemporaryDirectory(prefix="visualizer-home-") as home:
            launches.append(launch_once(home))
    times = [l.seconds for l in launches]
    own = [l.reported_s for l in launches if l.reported_s is not None]
    if all(l.marked for l in launches):
        note = f"spawn → '{MARKER}' line, median of {RUNS}"
        if own:
            note += f"; app's own figure {Summary.of(own).value:.2f} s"
    else:
        note = (f"FALLBACK spawn → exit of --run-steps 0 (no '{MARKER}' line from visualizer/ui/app.py), "
                "so it includes building the run and the first frame")
        failed = [l for l in launches if l.exit_code]
        if failed:
            note += f"; exit code {failed[0].exit_code}: {failed[0].problem}"
    return [Result.summarised("startup_s", "", Summary.of(times), opts.device_type, None, note,
                              marker_line=all(l.marked for l in launches),
                              app_reported_s=Summary.of(own).value if own else None)]
