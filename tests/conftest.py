import os

# Qt tests run without a display; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")  # as the app sets it (visualizer.ui.app.prepare_qt_environment)
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
