"""Fine-tuning: freeze chosen early layers and see how far each layer's weights moved since
the model was loaded (or the run started): ||W - W_loaded|| / ||W_loaded|| per layer."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label

BAR_CHARS = 20


def movement_text(moved: float | None, top: float) -> str:
    """A text bar (scaled to the largest movement ``top``) and the percentage."""
    if moved is None:
        return "–"
    filled = int(round(BAR_CHARS * moved / top)) if top > 0 else 0
    return f"{'█' * filled}{'·' * (BAR_CHARS - filled)} {100 * moved:.2f} %"


class FineTunePanel(Panel):
    """One row per layer with weights: a 'frozen' box and the distance moved since loading."""

    title = "Fine-tune"
    key = "finetune"
    setting_changed = Signal(str, object)  # ("frozen", [layer names])

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(
            "Tick layers to freeze them (their weights stay as loaded), then press play to fine-tune the rest. "
            "<i>moved</i> = ‖W − W<sub>loaded</sub>‖ / ‖W<sub>loaded</sub>‖ for the layer's weights and biases.")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["layer", "frozen", "moved since loading"])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._toggled)
        self.up_to = QPushButton("Freeze up to the selected layer")
        self.up_to.setToolTip("Freeze every layer with weights from the input up to the selected layer (transfer learning)")
        self.up_to.clicked.connect(self.freeze_up_to_selection)
        none = QPushButton("Unfreeze all")
        none.clicked.connect(lambda: self.set_frozen([]))
        buttons = QHBoxLayout()
        buttons.addWidget(self.up_to)
        buttons.addWidget(none)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        self.frozen: list[str] = []
        self._filling = False

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self.frozen = []
        self._filling = True
        self.table.setRowCount(len(run.param_layers))
        for row, name in enumerate(run.param_layers):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            box = QTableWidgetItem()
            box.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            box.setCheckState(Qt.CheckState.Unchecked)
            self.table.setItem(row, 1, box)
            self.table.setItem(row, 2, QTableWidgetItem("–"))
        self._filling = False

    def set_frozen(self, layers: list[str]) -> None:
        """Freeze exactly ``layers`` (ticks the boxes and asks the trainer)."""
        if self.run is None:
            return
        self._filling = True
        for row, name in enumerate(self.run.param_layers):
            self.table.item(row, 1).setCheckState(Qt.CheckState.Checked if name in layers else Qt.CheckState.Unchecked)
        self._filling = False
        self.frozen = [n for n in self.run.param_layers if n in layers]
        self.setting_changed.emit("frozen", list(self.frozen))

    def freeze_up_to_selection(self) -> None:
        if self.run is None or self.selection.layer is None:
            return
        order = self.run.layer_names
        limit = order.index(self.selection.layer) if self.selection.layer in order else -1
        self.set_frozen([n for n in self.run.param_layers if order.index(n) <= limit])

    def _toggled(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 1 or self.run is None:
            return
        checked = [self.run.param_layers[r] for r in range(self.table.rowCount())
                   if self.table.item(r, 1).checkState() == Qt.CheckState.Checked]
        self.set_frozen(checked)

    def render(self, frame: Frame | None) -> None:
        if frame is None or self.run is None:
            return
        moved = frame.info.get("moved", {})
        top = max(moved.values(), default=0.0)
        self._filling = True
        for row, name in enumerate(self.run.param_layers):
            self.table.item(row, 2).setText(movement_text(moved.get(name), top))
        self._filling = False
        self.shown = {"moved": dict(moved), "frozen": list(frame.info.get("frozen", []))}
