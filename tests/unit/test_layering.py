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
