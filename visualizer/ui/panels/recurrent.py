"""Recurrent state: a recurrent layer's hidden state over the time steps of the selected
sample as a heat map, and one of its gates (LSTM: input, forget, candidate, output, cell;
GRU: reset, update, candidate) below it."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import SEQUENTIAL, colormap, symmetric_levels
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.token_heatmap import TokenHeatmap
from visualizer.ui.widgets.token_symbols import token_symbols

NO_FRAME = "No frame yet: press Play (Space) or Step (→) to capture one."
SIGNED = ("candidate", "cell")  # tanh-valued or unbounded: diverging colours; the rest are sigmoids in [0, 1]
MAX_UNITS = 64


class RecurrentPanel(Panel):
    """Hidden units (rows) by time steps (columns, labelled with the input tokens)."""

    title = "Recurrent state"
    key = "recurrent"
    heavy = True

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(scale=1.0)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.hidden = TokenHeatmap("diverging", x_label="time step (input token)", y_label="hidden unit",
                                   bar_label="hidden state")
        self.gate = TokenHeatmap(SEQUENTIAL, x_label="time step (input token)", y_label="unit", bar_label="gate")
        self.gate_choice = QComboBox()
        self.gate_choice.setToolTip("Which gate to show below the hidden state")
        self.gate_choice.currentTextChanged.connect(lambda _t: self._rerender())
        pick = QHBoxLayout()
        pick.addWidget(QLabel("gate:"))
        pick.addWidget(self.gate_choice, 1)
        self.gate_box = QWidget()
        box = QVBoxLayout(self.gate_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(pick)
        box.addWidget(self.gate, 1)
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.hidden, 1)
        inner.addWidget(self.gate_box, 1)
        self.body = Placeholder(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.body, 1)
        self._key: tuple | None = None
        self.body.show_message("No run yet.")

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._key = None
        self.gate_choice.blockSignals(True)
        self.gate_choice.clear()
        self.gate_choice.blockSignals(False)
        if not run.recurrent_layers:
            self.caption.setText("")
            self.body.show_message(f"{run.model_name} has no recurrent layers (RNN, LSTM, GRU), so there is no "
                                   "hidden state over time to show. Try the lstm-parity demo.")
        else:
            self.body.show_message(NO_FRAME)

    def _rerender(self) -> None:
        self._key = None
        self.render(self.history.latest)

    def render(self, frame: Frame | None) -> None:
        run = self.run
        if run is None or not run.recurrent_layers:
            return
        if frame is None or not frame.recurrent:
            self.body.show_message(NO_FRAME)
            return
        selected = self.selection.layer
        layer = selected if selected in frame.recurrent else next(n for n in run.recurrent_layers if n in frame.recurrent)
        sample = self.sample_index()
        key = (id(frame), frame.step, layer, sample, self.gate_choice.currentText())
        if key == self._key:
            return
        self._key = key
        entry = frame.recurrent[layer]
        gates = [k.split("/", 1)[1] for k in entry if k.startswith("gates/")]
        if [self.gate_choice.itemText(i) for i in range(self.gate_choice.count())] != gates:
            self.gate_choice.blockSignals(True)
            self.gate_choice.clear()
            self.gate_choice.addItems(gates)
            self.gate_choice.setCurrentIndex(min(1, len(gates) - 1))  # the forget/update gate: the memory's story
            self.gate_choice.blockSignals(False)
        hidden = np.asarray(entry["hidden"][sample], np.float32)  # (T, H)
        units = min(MAX_UNITS, hidden.shape[1])
        steps = hidden.shape[0]
        labels = token_symbols(run.tokens, np.asarray(run.probe_inputs[sample]).ravel()[:steps])
        more = f" (first {units} of {hidden.shape[1]} units)" if units < hidden.shape[1] else ""
        self.body.show_content()
        h = hidden[:, :units].T
        self.hidden.set_map(h, symmetric_levels(h), labels, None, title=f"{layer}: hidden state h<sub>t</sub>{more}")
        self.shown = {"layer": layer, "sample": sample, "hidden": h}
        self.gate_box.setVisible(bool(gates))
        gate = self.gate_choice.currentText()
        if gates and gate:
            g = np.asarray(entry[f"gates/{gate}"][sample], np.float32)[:, :units].T
            signed = gate in SIGNED
            self.gate.colorbar.setColorMap(colormap("diverging" if signed else SEQUENTIAL))
            levels = symmetric_levels(g) if signed else (0.0, 1.0)
            self.gate.set_map(g, levels, labels, None, title=f"{gate} {'state' if gate == 'cell' else 'gate'}")
            self.shown[f"gate/{gate}"] = g
        what = "LSTM" if "forget" in gates else "GRU" if "update" in gates else "recurrent layer"
        self.caption.setText(
            f"<b>{layer}</b> ({what}) on probe sample {sample} at step {frame.step}: each column is one time step "
            f"(the token read then), each row one unit; red = positive, blue = negative."
            + (" Gates are 0 (closed) to 1 (open)." if gates else ""))
