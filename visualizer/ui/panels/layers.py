"""Layers: the watched layers in forward order, with live activation and gradient trends.

One row per layer: name, type, output shape, parameter count, a sparkline of the
activation RMS over steps, a sparkline of the gradient norm (log scale) and the share
of dead units. The table is built once per run; each frame only changes cell data,
and the sparklines are re-read from the history at most five times a second.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QStyle, QTableView, QVBoxLayout

from visualizer.capture.alarms import TITLES as ALARM_TITLES  # numpy only: no torch in the UI process
from visualizer.stream.frames import Frame, LayerInfo, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.sparkline import SPARKLINE_HEIGHT, SPARKLINE_ROLE, Sparkline, SparklineDelegate, format_value

# The live columns come right after the name so they stay in view in a narrow dock.
NAME, ACT, GRAD, DEAD, KIND, SHAPE, PARAMS = range(7)
HEADERS = ["layer", "activation\nRMS", "gradient\n(log scale)", "dead", "type", "output\nshape", "params"]
HEADER_TIPS = [
    "The layer's name in the model, in the order the forward pass calls it.\n"
    "A warning sign marks a layer with an alarm (vanishing or exploding gradient, dead ReLUs,\n"
    "saturated units); a red row is where a NaN or infinity first appeared.",
    "Root-mean-square of the layer's output on the probe batch, over training steps.\n"
    "Each line is scaled to its own range; the number is the newest value.\n"
    "Exploding or collapsing activations show up here first.",
    "Gradient size over training steps, on a log scale (gradients span decades).\n"
    "Red, layers with parameters: norm of the gradient of the training loss w.r.t. the layer's parameters.\n"
    "Orange, other layers: RMS of the gradient of the probe loss w.r.t. the layer's output.\n"
    "A line sliding towards zero in early layers means vanishing gradients.",
    "Share of channels/units that are never positive on any input (\"dead\"): for ReLU layers\n"
    "any input of the last validation pass, for other layers (and before the first\n"
    "validation) any probe sample. A dead ReLU passes no gradient and stops learning.\n"
    "Tinted when more than half are dead.",
    "The kind of module (Conv2d, ReLU, Linear, …).",
    "Shape of the layer's output for one sample: channels×height×width for feature maps, units for dense layers.",
    "Number of trainable parameters in this layer itself (weights and biases).",
]
ACT_COLOR, PARAM_GRAD_COLOR, ACT_GRAD_COLOR = (31, 119, 180), (214, 39, 40), (230, 120, 0)
DEAD_WARNING = 0.5
DEAD_TINT = QColor(255, 196, 170)
SELECTED = QColor(255, 221, 120)  # a pale version of the shared highlight colour
ALARM_TINT = QColor(255, 236, 190)
NONFINITE_TINT = QColor(240, 120, 120)
NONFINITE_TEXT = QColor(170, 0, 0)
WHERE = {"output": "output", "gradient": "output gradient", "weight gradient": "weight gradient",
         "weights": "weights after the update", "loss": "loss"}
SPARK_WIDTH = 80  # pixels per sparkline column
NAME_WIDTH = 104  # at most, so the live columns stay in view
SPARK_INTERVAL_S = 0.25  # sparklines are re-read from the history at most 4 times a second


def format_shape(shape: tuple[int, ...]) -> str:
    """(16, 32, 32) -> "16×32×32"; () -> "–"."""
    return "×".join(str(int(s)) for s in shape) if shape else "–"


class LayerTableModel(QAbstractTableModel):
    """Rows are fixed per run; ``set_latest`` and ``set_sparklines`` change cell data in place."""

    def __init__(self) -> None:
        super().__init__()
        self.layers: list[LayerInfo] = []
        self.param_layers: set[str] = set()
        self.act = self.grad = self.dead = np.zeros(0)
        self.dead_basis: list[str] = []  # per row: the inputs its dead share was judged on
        self.act_lines: list[Sparkline | None] = []
        self.grad_lines: list[Sparkline | None] = []
        self.alarms: dict[str, list[dict[str, Any]]] = {}
        self.divergence: dict[str, Any] | None = None
        self.icons: dict[str, QIcon] = {}

    def set_alarms(self, alarms: dict[str, list[dict[str, Any]]], divergence: dict[str, Any] | None) -> None:
        """Layer alarms ({layer: [{"kind", "since", "text"}]}) and the divergence being shown, if any."""
        if alarms == self.alarms and divergence == self.divergence:
            return
        self.alarms, self.divergence = alarms, divergence
        if self.layers:
            self.dataChanged.emit(self.index(0, NAME), self.index(len(self.layers) - 1, NAME))

    def set_layers(self, layers: list[LayerInfo], param_layers: set[str]) -> None:
        self.beginResetModel()
        self.layers, self.param_layers = list(layers), set(param_layers)
        n = len(self.layers)
        self.act, self.grad, self.dead = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        self.dead_basis = [""] * n
        self.act_lines, self.grad_lines = [None] * n, [None] * n
        self.alarms, self.divergence = {}, None
        self.endResetModel()

    def has_params(self, row: int) -> bool:
        layer = self.layers[row]
        return layer.name in self.param_layers or layer.num_params > 0

    def set_latest(self, act: np.ndarray, grad: np.ndarray, dead: np.ndarray, dead_basis: list[str] | None = None) -> None:
        self.act, self.grad, self.dead = act, grad, dead
        self.dead_basis = dead_basis if dead_basis is not None else [""] * len(dead)
        if self.layers:
            self.dataChanged.emit(self.index(0, DEAD), self.index(len(self.layers) - 1, DEAD))

    def set_sparklines(self, act: list[Sparkline | None], grad: list[Sparkline | None]) -> None:
        self.act_lines, self.grad_lines = act, grad
        if self.layers:
            self.dataChanged.emit(self.index(0, ACT), self.index(len(self.layers) - 1, GRAD))

    # -- Qt model interface ------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.layers)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.layers):
            return None
        row, col = index.row(), index.column()
        layer = self.layers[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col, layer)
        if role == SPARKLINE_ROLE:
            return self.act_lines[row] if col == ACT else self.grad_lines[row] if col == GRAD else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col, layer)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (PARAMS, DEAD):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and col == DEAD and self.dead[row] > DEAD_WARNING:
            return QBrush(DEAD_TINT)
        if col == NAME and role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.DecorationRole,
                                    Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole):
            state = self.alarm_state(layer.name)
            if state is None:
                return None
            if role == Qt.ItemDataRole.DecorationRole:
                return self.icons.get(state)
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(NONFINITE_TINT if state == "nonfinite" else ALARM_TINT)
            if state == "nonfinite":  # stays visible when the row is also the selected one
                if role == Qt.ItemDataRole.ForegroundRole:
                    return QBrush(NONFINITE_TEXT)
                font = QFont()
                font.setBold(True)
                return font
            return None
        if role == Qt.ItemDataRole.ForegroundRole and col == PARAMS and layer.num_params == 0:
            return QBrush(QColor(140, 140, 140))
        return None

    def alarm_state(self, name: str) -> str | None:
        """"nonfinite" for the layer a divergence was traced to, "alarm" for one with alarms, else None."""
        if self.divergence is not None and self.divergence.get("layer") == name:
            return "nonfinite"
        return "alarm" if self.alarms.get(name) else None

    def alarm_lines(self, name: str) -> list[str]:
        """One readable line per alarm on ``name``, each with the step it began."""
        lines = []
        d = self.divergence
        if d is not None and d.get("layer") == name:
            lines.append(f"{d['value']} first appeared here ({WHERE.get(d['where'], d['where'])}) at step {d['step']:,}")
        for a in self.alarms.get(name, []):
            lines.append(f"{ALARM_TITLES.get(a['kind'], a['kind'])} since step {a['since']:,}: {a['text']}")
        return lines

    def _text(self, row: int, col: int, layer: LayerInfo) -> str | None:
        if col == NAME:
            return layer.name
        if col == KIND:
            return layer.kind
        if col == SHAPE:
            return format_shape(layer.output_shape)
        if col == PARAMS:
            return f"{layer.num_params:,}"
        if col == DEAD:
            d = self.dead[row]
            return f"{100 * d:.0f} %" if math.isfinite(d) else "–"
        return None

    def _tooltip(self, row: int, col: int, layer: LayerInfo) -> str:
        tip = HEADER_TIPS[col]
        if col in (ACT, GRAD):
            line = self.act_lines[row] if col == ACT else self.grad_lines[row]
            latest = self.act[row] if col == ACT else self.grad[row]
            what = ("activation RMS" if col == ACT else
                    "parameter gradient norm" if self.has_params(row) else "output gradient RMS")
            if line is None or not np.isfinite(latest):
                return f"{layer.name}: no {what} recorded yet.\n\n{tip}"
            x, y = line.points()
            span = ""
            if y.size:
                lo, hi = (10 ** y.min(), 10 ** y.max()) if line.log else (y.min(), y.max())
                span = f"\nrange {format_value(lo)} to {format_value(hi)} over {y.size} captures"
            return f"{layer.name}: {what} {format_value(latest)} now{span}\n\n{tip}"
        if col == DEAD and math.isfinite(self.dead[row]):
            basis = self.dead_basis[row] if row < len(self.dead_basis) else ""
            judged = f" (never positive on any of {basis})" if basis else ""
            return f"{layer.name}: {100 * self.dead[row]:.1f} % dead{judged}\n\n{tip}"
        if col == NAME and self.alarm_lines(layer.name):
            return f"{layer.name}:\n" + "\n".join(f"• {line}" for line in self.alarm_lines(layer.name)) + f"\n\n{tip}"
        summary = (f"{layer.name} ({layer.kind}): output {format_shape(layer.output_shape)}, "
                   f"{layer.num_params:,} parameters")
        return f"{summary}\n\n{tip}"


class LayersPanel(Panel):
    """The model's watched layers as a table with live sparklines; a click selects a layer."""

    title = "Layers"
    key = "layers"

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = QLabel("No run yet.")
        self.caption.setWordWrap(True)
        self.model = LayerTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegate(SparklineDelegate(self.table, SPARK_WIDTH))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keeps both ends of a dotted name
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(SPARKLINE_HEIGHT + 2)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(30)
        palette = self.table.palette()
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            palette.setColor(group, QPalette.ColorRole.Highlight, SELECTED)
            palette.setColor(group, QPalette.ColorRole.HighlightedText, QColor(0, 0, 0))
        self.table.setPalette(palette)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.clicked.connect(lambda index: self._row_changed(index, QModelIndex()))
        style = self.style()
        self.model.icons = {"alarm": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning),
                            "nonfinite": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)}
        self.alarm_list = QLabel("")
        self.alarm_list.setWordWrap(True)
        self.alarm_list.setTextFormat(Qt.TextFormat.RichText)
        self.alarm_list.setToolTip("Alarms on layers (thresholds in the README, 'What the app checks'); "
                                   "each says the step it began. Hover a marked layer name for details.")
        self.alarm_list.hide()
        self.footer = QLabel("")
        self.footer.setWordWrap(True)  # a long count must not widen the dock
        self.footer.setToolTip("Parameters counted over the whole model; layers without weights have none.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.alarm_list)
        layout.addWidget(self.footer)
        self._syncing = False
        self._alarm_width = False
        self._next_spark = 0.0
        self._spark_timer = QTimer(self)
        self._spark_timer.setSingleShot(True)
        self._spark_timer.timeout.connect(self._refresh_sparklines)

    # -- run and frames ----------------------------------------------------------
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._spark_timer.stop()
        self._next_spark = 0.0
        self.model.set_layers(run.layers, set(run.param_layers))
        self._size_columns()
        self._alarm_width = False
        listed = sum(l.num_params for l in run.layers)
        extra = f" ({listed:,} in the layers listed)" if listed != run.num_params else ""
        self.footer.setText(f"{len(run.layers)} layers · {run.num_params:,} parameters in total{extra}")
        self.caption.setText(f"{run.model_name} on {run.data_name}, in forward order. No frame yet: press Play or Step.")
        self._sync_highlight()

    def _size_columns(self) -> None:
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        header.resizeSection(NAME, min(header.sectionSize(NAME), NAME_WIDTH))  # long names elide; tooltips tell
        for col, width in ((ACT, SPARK_WIDTH), (GRAD, SPARK_WIDTH)):
            header.resizeSection(col, width)
        header.resizeSection(DEAD, max(header.sectionSize(DEAD), 44))

    def render(self, frame: Frame | None) -> None:
        run = self.run
        if run is None:
            return
        names = [l.name for l in run.layers]
        n = len(names)
        act, grad, dead = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        basis = [""] * n
        if frame is None:
            self.caption.setText(f"{run.model_name} on {run.data_name}, in forward order. No frame yet: press Play or Step.")
        else:
            gradients = frame.gradients or self.history.gradients
            for i, name in enumerate(names):
                a = frame.activations.get(name)
                if a is not None:
                    act[i], dead[i], basis[i] = a.norm, a.dead_fraction, a.dead_basis
                if self.model.has_params(i):
                    g = gradients.get(name)
                    grad[i] = g.grad_norm if g is not None else np.nan
                elif a is not None:
                    grad[i] = a.grad_norm
            missing = sum(1 for name in names if name not in frame.activations)
            note = f" ({missing} layer(s) not captured in this frame: shown as –)" if missing else ""
            self.caption.setText(f"{run.model_name} on {run.data_name}, in forward order, step {frame.step:,}. "
                                 f"Click a row to focus every panel on that layer.{note}")
        self.model.set_latest(act, grad, dead, basis)
        if frame is not None:
            self.model.set_alarms(frame.info.get("alarms", self.model.alarms), frame.info.get("divergence"))
        self._show_alarm_list()
        if (self.model.alarms or self.model.divergence) and not self._alarm_width:
            self._alarm_width = True  # room for the warning sign beside the name
            header = self.table.horizontalHeader()
            header.resizeSection(NAME, header.sectionSize(NAME) + 20)
        self.shown = {"layers": np.array(names), "act_norm": act, "grad": grad, "dead": dead,
                      "alarms": {n: [a["kind"] for a in v] for n, v in self.model.alarms.items()},
                      "nonfinite_layer": (self.model.divergence or {}).get("layer")}
        self._schedule_sparklines()

    def _show_alarm_list(self) -> None:
        """The alarms in words under the table: the divergence first, then by kind with their layers."""
        from html import escape

        parts = []
        d = self.model.divergence
        if d is not None:
            where = f"in <b>{escape(d['layer'])}</b> ({WHERE.get(d['where'], d['where'])})" if d.get("layer") else "(layer unknown)"
            back = f"; rolled back to step {d['rolled_back_to']:,}" if d.get("rolled_back_to") is not None else ""
            parts.append(f"<span style='color:#b00000'><b>Diverged:</b> {d['value']} first at step {d['step']:,} "
                         f"{where}{back}</span>")
        by_kind: dict[str, list[str]] = {}
        for name, alarms in self.model.alarms.items():
            for a in alarms:
                by_kind.setdefault(a["kind"], []).append(f"{escape(name)} (since {a['since']:,})")
        for kind, items in by_kind.items():
            shown = ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")
            title = ALARM_TITLES.get(kind, kind)
            parts.append(f"<b>{title[:1].upper()}{title[1:]}</b>: {shown}")
        self.alarm_list.setText("<br>".join(parts))
        self.alarm_list.setVisible(bool(parts))

    def _schedule_sparklines(self) -> None:
        now = time.monotonic()
        if now >= self._next_spark:
            self._refresh_sparklines()
        elif not self._spark_timer.isActive():  # the last frame before a pause still gets drawn
            self._spark_timer.start(max(1, int(1000 * (self._next_spark - now))))

    def _refresh_sparklines(self) -> None:
        """Re-read every layer's series from the history (rate-limited by the caller)."""
        self._next_spark = time.monotonic() + SPARK_INTERVAL_S
        act_lines: list[Sparkline | None] = []
        grad_lines: list[Sparkline | None] = []
        for i, layer in enumerate(self.model.layers):
            series = self.history.layers.get(layer.name)
            if series is None or len(series) == 0:
                act_lines.append(None)
                grad_lines.append(None)
                continue
            steps, cols = series.data()
            act_lines.append(Sparkline(steps, cols["act_norm"], False, ACT_COLOR))
            if self.model.has_params(i):
                grad_lines.append(Sparkline(steps, cols["grad_norm"], True, PARAM_GRAD_COLOR))
            else:
                grad_lines.append(Sparkline(steps, cols["act_grad_norm"], True, ACT_GRAD_COLOR))
        self.model.set_sparklines(act_lines, grad_lines)

    # -- selection ---------------------------------------------------------------
    def selection_changed(self, changed: frozenset[str]) -> None:
        """Only the highlighted row depends on the selection."""
        if "layer" in changed:
            self._sync_highlight()

    def _sync_highlight(self) -> None:
        names = self.run.layer_names if self.run else []
        layer = self.selection.layer
        self._syncing = True
        try:
            if layer in names:
                index = self.model.index(names.index(layer), NAME)
                self.table.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                self.table.scrollTo(index)
            else:
                self.table.clearSelection()
        finally:
            self._syncing = False

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or not current.isValid() or current.row() >= len(self.model.layers):
            return
        self.selection.set(layer=self.model.layers[current.row()].name)
