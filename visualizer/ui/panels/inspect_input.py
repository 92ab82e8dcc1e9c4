"""Inspect input: type a token sequence (or take a probe sample) and see the model's
predictions and attention (or recurrent state) for it at once, computed on a snapshot of
the current weights in the training worker."""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from visualizer.engine.tokens import encode  # plain Python: no torch in the UI
from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.attention import attention_layer_for
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import SEQUENTIAL, symmetric_levels
from visualizer.ui.widgets.job_status import JobStatus
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.probability_bars import ProbabilityBars
from visualizer.ui.widgets.token_heatmap import TokenHeatmap

NAME = "inspect"


def prediction_table(symbols: list[str], probs: np.ndarray, class_names: list[str]) -> str:
    """Rich text: the input tokens over the predicted token at each position, with its probability."""
    best = probs.argmax(-1)
    cells_in = "".join(f"<td align='center'><b>{s}</b></td>" for s in symbols)
    cells_out = "".join(f"<td align='center'>{class_names[k]}</td>" for k in best)
    cells_p = "".join(f"<td align='center' style='color:#666'>{p:.0%}</td>" for p in probs.max(-1))
    return (f"<table cellspacing='4'><tr><td>input</td>{cells_in}</tr><tr><td>predicted</td>{cells_out}</tr>"
            f"<tr><td>probability</td>{cells_p}</tr></table>")


def readable_text(symbols: list[str]) -> str:
    """Tokenizer tokens back to typed text: special tokens ([CLS], <pad>, ...) dropped, word pieces
    (##ing) joined, SentencePiece word marks (\u2581) turned into spaces."""
    words: list[str] = []
    for s in symbols:
        if (s.startswith("[") and s.endswith("]")) or (s.startswith("<") and s.endswith(">")):
            continue
        if s.startswith("##") and words:
            words[-1] += s[2:]
        else:
            words.append(s.replace("\u2581", " ").replace("\u0120", " ").strip() or s)
    return " ".join(words)


class InspectInputPanel(AnalysisPanel):
    """A line to type tokens into, the predictions for them, and the selected attention head's map."""

    title = "Inspect input"
    key = "inspect_input"
    analyses = (NAME,)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(scale=1.0)
        self.entry = QLineEdit()
        self.entry.setPlaceholderText("type a sequence of symbols, e.g. 3 1 4 1 5")
        self.entry.returnPressed.connect(self.run_now)
        self.sample = QSpinBox()
        self.sample.setPrefix("probe sample ")
        self.sample.setToolTip("Copy a probe sample (validation data) into the line")
        self.take = QPushButton("Use sample")
        self.take.clicked.connect(self.use_sample)
        self.status = JobStatus("Inspect", "Run the model on the typed sequence (current weights)")
        self.status.run_clicked.connect(self.run_now)
        self.status.cancel_clicked.connect(lambda: self.cancel(NAME))
        top = QHBoxLayout()
        top.addWidget(self.entry, 3)
        top.addWidget(self.sample)
        top.addWidget(self.take)
        self.predictions = QLabel()
        self.predictions.setTextFormat(Qt.TextFormat.RichText)
        self.predictions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = ProbabilityBars(220, 90)
        self.map = TokenHeatmap(SEQUENTIAL, x_label="key", y_label="query", bar_label="attention weight",
                                value_name="weight")
        self.hidden_map = TokenHeatmap("diverging", x_label="time step (input token)", y_label="hidden unit",
                                       bar_label="hidden state")
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.predictions, 1)
        row.addWidget(self.bars)
        inner.addLayout(row)
        inner.addWidget(self.map, 1)
        inner.addWidget(self.hidden_map, 1)
        self.body = Placeholder(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.body, 1)
        self._result: dict[str, Any] | None = None
        self._usable = False
        self.body.show_message("No run yet.")

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._result = None
        self.status.reset()
        self._usable = run.data_kind == "sequence" and bool(run.tokens)
        for w in (self.entry, self.sample, self.take, self.status):
            w.setEnabled(self._usable)
        if not self._usable:
            self.caption.setText("")
            self.body.show_message("Inspect input works on token-sequence runs (Transformer, RNN, LSTM, GRU on "
                                   "copy, reverse, sort, brackets, parity or text).")
            return
        self.sample.setRange(0, max(0, len(run.probe_inputs) - 1))
        if run.tokenizer:
            self.entry.setPlaceholderText("type some text, e.g. the cat sat on the mat")
            self.caption.setText(f"Type any text: the model's own tokenizer ({run.tokenizer}, {len(run.tokens):,} "
                                 "tokens) splits it. Press Enter to see predictions and every head's attention "
                                 "for the current weights.")
        else:
            self.entry.setPlaceholderText("type a sequence of symbols, e.g. 3 1 4 1 5")
            self.caption.setText(f"Symbols: <b>{' '.join(run.tokens)}</b>; at most {run.input_shape[0]} of them. "
                                 "Press Enter to see predictions and attention for the current weights.")
        self.use_sample()
        self.body.show_message("Type a sequence and press Enter (or Inspect).")

    def use_sample(self) -> None:
        if self.run is None or not self._usable:
            return
        ids = np.asarray(self.run.probe_inputs[self.sample.value()]).astype(np.int64).ravel()
        symbols = [self.run.tokens[i] for i in ids]
        self.entry.setText(readable_text(symbols) if self.run.tokenizer else " ".join(symbols))

    def run_now(self) -> None:
        """Encode the typed text and ask the worker to run the model on it."""
        if self.run is None or not self._usable:
            return
        if self.run.tokenizer:  # the worker tokenises with the model's own tokenizer
            if not self.entry.text().strip():
                self.status._say("cannot inspect: type some text first")
                self.shown = {"error": "type some text first"}
                return
            self.status.started()
            self.request(NAME, "inspect", text=self.entry.text())
            return
        try:
            ids = encode(self.run.tokens, self.entry.text().replace("\u2423", " "))
            if len(ids) > self.run.input_shape[0]:
                raise ValueError(f"{len(ids)} symbols typed; this model takes at most {self.run.input_shape[0]}")
        except ValueError as exc:
            self.status._say(f"cannot inspect: {exc}")
            self.shown = {"error": str(exc)}
            return
        self.status.started()
        self.request(NAME, "inspect", tokens=ids)

    def analysis_update(self, update: Any) -> None:
        self.status.show_update(update)
        if update.state == "done":
            self._result = update.result
            self.render(self.history.latest)
        elif update.state == "error":
            self.shown = {"error": update.message}

    def render(self, frame: Frame | None) -> None:
        result, run = self._result, self.run
        if run is None or result is None:
            return
        ids = np.asarray(result["tokens"], np.int64)
        symbols = [run.tokens[i] for i in ids]
        probs = np.asarray(result["probs"], np.float32)
        self.body.show_content()
        if run.tokenizer and run.spec.get("head") is False:  # a bare encoder: nothing to predict
            self.predictions.setText(f"<b>{' '.join(symbols)}</b>: this model has no prediction head, so only its "
                                     "attention and activations are shown.")
            self.bars.setVisible(False)
        elif probs.ndim == 2:
            self.predictions.setText(prediction_table(symbols, probs, run.class_names))
            self.bars.setVisible(False)
        else:
            best = int(probs.argmax())
            self.predictions.setText(f"<b>{' '.join(symbols)}</b> → <b>{run.class_names[best]}</b> ({probs[best]:.0%})")
            self.bars.setVisible(True)
            self.bars.set_probs(probs, run.class_names)
        self.shown = {"tokens": ids, "probs": probs}
        attention = result.get("attention") or {}
        self.map.setVisible(bool(attention))
        self.hidden_map.setVisible(not attention and bool(result.get("recurrent")))
        if attention:
            names = list(attention)
            layer = attention_layer_for(self.selection.layer, names) or names[0]
            weights = attention[layer]
            head = int(np.clip(self.selection.head or 0, 0, weights.shape[0] - 1))
            self.map.set_map(weights[head], (0.0, 1.0), symbols, symbols, title=f"{layer} · head {head}")
            self.shown.update({"layer": layer, "head": head, "weights": weights[head]})
        elif result.get("recurrent"):
            layer = next(iter(result["recurrent"]))
            hidden = np.asarray(result["recurrent"][layer]["hidden"], np.float32).T
            self.hidden_map.set_map(hidden, symmetric_levels(hidden), symbols, None, title=f"{layer}: hidden state over time")
            self.shown.update({"layer": layer, "hidden": hidden})
