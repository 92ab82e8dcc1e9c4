"""Opening model files in the window: File > Open, Open Example, drag and drop.

Loading happens here (small files, between ticks); a file that needs answers (a state
dict without its architecture, an input shape nobody wrote down) gets the describe
dialog, whose answers are saved beside the file; a pickle needs a confirmation that names
the risk. Every failure is a message in a dialog and the current session is kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

FILE_FILTER = ("Models (*.safetensors *.pt *.pth *.pt2 *.ts *.jit *.bin config.json);;"
               "Checkpoints (*.safetensors);;Exported programs (*.pt2);;All files (*)")


class ModelOpener:
    """Opens model files for ``window`` (a MainWindow: ``open_loaded``, ``show_error``)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.confirm_trust = True  # False in tests: never trust without being told

    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open model", "", FILE_FILTER)
        if path:
            self.open_path(Path(path).parent if Path(path).name == "config.json" else path)

    def open_path(self, path: str | Path, trust: bool = False, data: str | None = None) -> bool:
        """Load ``path`` and show it in inspect mode; False (with a message) if it cannot be."""
        from visualizer.engine.loading import LoadError, load_model

        path = Path(path)
        try:
            loaded = load_model(path, trust=trust)
        except LoadError as exc:
            text = str(exc)
            if "--trust" in text and not trust and self.confirm_trust and self._ask_trust(path):
                return self.open_path(path, trust=True, data=data)
            if self._needs_answers(text) and self._describe(path):
                return self.open_path(path, trust=trust, data=data)
            self.window.show_error(f"Could not open {path.name}: {text}")
            return False
        if loaded.kind == "hf":  # inspected on sample sentences and on text typed in the Inspect input panel
            return self.window.open_loaded(loaded, data)
        if loaded.input_shape is None and loaded.data_name is None and data is None:
            if not self._describe(path):
                return False
            return self.open_path(path, trust=trust, data=data)
        return self.window.open_loaded(loaded, data)

    @staticmethod
    def _needs_answers(text: str) -> bool:
        return "holds only weights" in text or "input shape" in text

    def _ask_trust(self, path: Path) -> bool:
        answer = QMessageBox.warning(
            self.window, "Run code from this file?",
            f"{path.name} is a pickled Python object. Loading it runs whatever code the file contains, "
            "with your permissions. Open it only if you trust where it came from.\n\nLoad it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _describe(self, path: Path) -> bool:
        from visualizer.ui.describe_dialog import DescribeDialog

        dialog = DescribeDialog(path, self.window)
        return dialog.exec() == DescribeDialog.DialogCode.Accepted and dialog.saved
