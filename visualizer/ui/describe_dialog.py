"""The dialog for what the app cannot guess about a model file; answers are saved beside it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

NOT_BUILT_IN = "(not a built-in architecture)"
NO_DATASET = "(none: use images or arrays)"


def _numbers(text: str, kind: type = float) -> list[Any]:
    return [kind(t) for t in text.replace(" ", ",").split(",") if t.strip()]


def parse_answers(arch: str, shape: str, classes: str, mean: str, std: str, data: str) -> dict[str, Any]:
    """The dialog's fields as sidecar answers; ValueError saying which field is wrong."""
    answers: dict[str, Any] = {}
    if arch and arch != NOT_BUILT_IN:
        answers["arch"] = arch
    try:
        dims = _numbers(shape.replace("x", ","), int)
    except ValueError:
        raise ValueError(f"input size: expected whole numbers like 1,8,8 (channels, height, width), got {shape!r}") from None
    if dims:
        if any(d < 1 for d in dims) or len(dims) > 4:
            raise ValueError("input size: up to four positive sizes, e.g. 3,32,32 or 2")
        answers["input_shape"] = dims
    names = [n.strip() for n in classes.split(",") if n.strip()]
    if names:
        answers["class_names"] = names
    try:
        m, s = _numbers(mean), _numbers(std)
    except ValueError:
        raise ValueError("normalisation: mean and std are numbers, one per channel") from None
    if m or s:
        if len(m) != len(s) or any(v <= 0 for v in s):
            raise ValueError("normalisation: give as many means as standard deviations, all deviations positive")
        answers["normalisation"] = {"mean": m, "std": s}
    if data and data != NO_DATASET:
        answers["data"] = data
    if "data" not in answers and "input_shape" not in answers:
        raise ValueError("give the input size or choose a dataset")
    return answers


class DescribeDialog(QDialog):
    """Input size and channels, normalisation, class names, architecture of a bare state dict."""

    def __init__(self, path: str | Path, parent: Any = None) -> None:
        from visualizer.engine.data import DATASETS
        from visualizer.engine.loading import read_sidecar
        from visualizer.engine.models import MODELS

        super().__init__(parent)
        self.path = Path(path)
        self.saved = False
        self.setWindowTitle(f"Describe {self.path.name}")
        try:
            known = read_sidecar(self.path)
        except ValueError:
            known = {}
        self.arch = QComboBox()
        self.arch.addItems([NOT_BUILT_IN, *MODELS])
        self.arch.setCurrentText(known.get("arch", NOT_BUILT_IN))
        self.shape = QLineEdit(",".join(map(str, known.get("input_shape", []))))
        self.shape.setPlaceholderText("channels, height, width, e.g. 1,8,8 or 3,32,32")
        self.classes = QLineEdit(", ".join(known.get("class_names", [])))
        self.classes.setPlaceholderText("e.g. circle, square, triangle (default: 0, 1, 2, …)")
        norm = known.get("normalisation") or {}
        self.mean = QLineEdit(",".join(map(str, norm.get("mean", []))))
        self.mean.setPlaceholderText("per channel, e.g. 0.5 (empty: inputs used as they are, in [0, 1])")
        self.std = QLineEdit(",".join(map(str, norm.get("std", []))))
        self.std.setPlaceholderText("per channel, e.g. 0.25")
        self.data = QComboBox()
        self.data.addItems([NO_DATASET, *DATASETS])
        self.data.setCurrentText(known.get("data", NO_DATASET))
        form = QFormLayout()
        form.addRow("Architecture of the weights", self.arch)
        form.addRow("Input size", self.shape)
        form.addRow("Class names", self.classes)
        form.addRow("Normalisation mean", self.mean)
        form.addRow("Normalisation std", self.std)
        form.addRow("Dataset to inspect with", self.data)
        self.message = QLabel("The app cannot read these from the file. Your answers are saved beside it "
                              f"({self.path.name}.visualizer.json) for next time.")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def answers(self) -> dict[str, Any]:
        return parse_answers(self.arch.currentText(), self.shape.text(), self.classes.text(),
                             self.mean.text(), self.std.text(), self.data.currentText())

    def save(self) -> None:
        from visualizer.engine.loading import LoadError, write_sidecar

        try:
            write_sidecar(self.path, self.answers())
        except (ValueError, LoadError) as exc:
            self.message.setText(f"<b>{exc}</b>")
            return
        self.saved = True
        self.accept()
