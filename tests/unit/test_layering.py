"""DESIGN rule 1: nothing below ui/ imports Qt, so the core runs from scripts and notebooks."""
import json
import subprocess
import sys


def test_core_packages_load_no_qt_module():
    code = (
        "import sys, json\n"
        "import visualizer, visualizer.engine, visualizer.capture, visualizer.stream\n"
        "import visualizer.engine.trainer, visualizer.engine.run, visualizer.engine.checkpoint\n"
        "import visualizer.capture.session, visualizer.capture.probes, visualizer.cli\n"
        "import visualizer.engine.loading, visualizer.engine.exported, visualizer.engine.inputs, visualizer.engine.data.drawing\n"
        "import visualizer.capture.internals, visualizer.capture.inspect, visualizer.cli_models, visualizer.examples\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_window_and_every_panel_load_without_torch():
    """The window's process never touches a tensor (frames are numpy), and importing torch
    there would cost seconds of start-up: panels may use only numpy-only helpers."""
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import visualizer.ui.main_window\n"
        "from visualizer.ui.panels import panel_classes\n"
        "panel_classes()\n"
        "print(sorted(m for m in ('torch', 'captum', 'sklearn', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
