"""Layer probes: how much class information each layer makes linearly readable, and how
that grows during training (the feature hierarchy forming).

A linear probe is a logistic regression fitted on a layer's frozen features and scored
on held-out samples (see :func:`visualizer.capture.hierarchy.layer_probes_job`). The panel
plots the newest accuracies against depth, from the raw input to the output, and keeps a
layer x training-step heat map of every probe run it has received.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.analysis_controls import AnalysisControls
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.category_axis import CategoryAxis
from visualizer.ui.widgets.history_heatmap import HistoryHeatmap, StepHistory
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import HIGHLIGHT, line_plot

NAME = "probes"  # the analysis stream this panel owns
KIND = "layer_probes"
INPUT = "input"
HISTORY = 200  # probe runs kept for the heat map
REFRESH_S = 10.0
LATEST, FIRST, CHANCE = (31, 119, 180), (170, 170, 170), (90, 90, 90)
WHAT = ("A linear probe measures how well a linear classifier can read the class from this layer's "
        "features, on held-out samples.")


class LayerProbesPanel(AnalysisPanel):
    """Held-out linear-probe accuracy per layer (input to output) for the newest weights,
    and a layer x step heat map of all probe runs; click a layer to select it."""

    title = "Layer probes"
    key = "probes"
    analyses = (NAME,)
    max_fps = 2.0  # render only checks whether a new probe run is due

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(WHAT)
        self.controls = AnalysisControls("Run now", "Fit the probes now, on a snapshot of the current weights",
                                         REFRESH_S)
        self.controls.run_clicked.connect(self.run_now)
        self.controls.cancel_clicked.connect(lambda: self.cancel(NAME))

        self.plot = line_plot("", "held-out probe accuracy")
        item = self.plot.getPlotItem()
        self.axis = CategoryAxis("bottom", angle=40, offset=0.0)
        item.setAxisItems({"bottom": self.axis})
        item.setLabel("bottom", "layer (forward order, input → output)")
        item.setMouseEnabled(False, False)
        item.hideButtons()
        item.showGrid(x=False, y=True, alpha=0.25)
        item.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setYRange(0, 1.02, padding=0)
        self.chance = pg.InfiniteLine(pos=0.5, angle=0, movable=False,
                                      pen=pg.mkPen(CHANCE, width=1.2, style=Qt.PenStyle.DashLine),
                                      label="chance", labelOpts={"position": 0.97, "color": CHANCE,
                                                                 "anchors": [(1, 1.1), (1, 1.1)]})
        self.plot.addItem(self.chance, ignoreBounds=True)
        self.first_curve = self.plot.plot([], [], pen=pg.mkPen(FIRST, width=1.2), symbol="o", symbolSize=4,
                                          symbolBrush=FIRST, symbolPen=None, name="first run")
        self.curve = self.plot.plot([], [], pen=pg.mkPen(LATEST, width=2), symbol="o", symbolSize=7,
                                    symbolBrush=LATEST, symbolPen=None, name="newest run")
        self.marker = pg.ScatterPlotItem(size=15, pen=pg.mkPen(HIGHLIGHT, width=3), brush=None)
        self.marker.setZValue(20)
        self.plot.addItem(self.marker)
        self.plot.setToolTip("Click a point to select its layer in every panel.")
        self.plot.scene().sigMouseClicked.connect(self._plot_clicked)

        self.heat = HistoryHeatmap("layer", "probe accuracy", "training step (weights probed)")
        self.heat.row_clicked.connect(self._row_clicked)
        self.heat.setToolTip("Each column is one probe run; click a row to select its layer.")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.heat)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.body = Placeholder(splitter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.controls)
        layout.addWidget(self.body, 1)

        self.names: list[str] = []
        self.runs = StepHistory(HISTORY)
        self.latest: dict[str, float] = {}
        self.latest_step: int | None = None
        self.body.show_message("Probe accuracies appear here after the first probe run.")

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self.names = [INPUT, *run.layer_names]
        self.runs.clear()
        self.latest, self.latest_step = {}, None
        self.controls.reset()
        self.axis.set_labels(self.names)
        self.heat.set_rows(self.names)
        self.heat.set_history(np.zeros(0), np.zeros((0, 0)))
        for c in (self.curve, self.first_curve):
            c.setData([], [])
        self.marker.setData([], [])
        self.plot.setXRange(-0.5, len(self.names) - 0.5, padding=0)
        k = max(2, len(run.class_names))
        self.chance.setPos(1.0 / k)
        self.chance.label.setFormat(f"chance (1/{k})")
        self.caption.setText(WHAT)
        self.body.show_message("Probe accuracies appear here after the first probe run "
                               f"(every ~{REFRESH_S:g} s while training runs, or press <b>Run now</b>).")

    # ------------------------------------------------------------------ requests
    def render(self, frame: Frame | None) -> None:
        """Nothing to draw per frame: start a probe run when one is due."""
        if self.run is not None and frame is not None and self.controls.due(frame.step):
            self.run_now()

    def run_now(self) -> None:
        if self.run is None:
            return
        self.request_with_status(NAME, KIND, "fitting probes…")

    def analysis_update(self, update: Any) -> None:
        if not self.controls.show_update(update):
            return
        if update.state == "error" and not self.latest:
            self.body.show_message(f"The probes failed: {update.message}")
        if update.state != "done" or not isinstance(update.result, dict):
            return
        step = int((update.tag or {}).get("step") or 0)
        self.latest = {n: float(update.result[n]) for n in self.names if n in update.result}
        self.latest_step = step
        self.runs.add(step, np.array([update.result.get(n, np.nan) for n in self.names], dtype=np.float64))
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        if not self.latest:
            return
        self.body.show_content()
        x = np.arange(len(self.names), dtype=np.float64)
        acc = np.array([self.latest.get(n, np.nan) for n in self.names])
        self.curve.setData(x, acc, connect="finite")
        steps, heat = self.runs.steps(), self.runs.matrix()
        if len(steps) > 1:
            self.first_curve.setData(x, heat[:, 0], connect="finite")
        else:
            self.first_curve.setData([], [])
        self._legend()
        self.heat.set_history(steps, heat)
        self._highlight()
        self.shown = {"accuracy": dict(self.latest), "layers": list(self.names), "heat": heat, "steps": steps}

    def _legend(self) -> None:
        legend = self.plot.getPlotItem().legend
        if legend is None:
            return
        legend.clear()
        legend.addItem(self.curve, f"newest (step {self.latest_step:,})")
        if len(self.runs) > 1:
            legend.addItem(self.first_curve, f"first (step {self.runs.steps()[0]:,})")

    def _highlight(self) -> None:
        layer = self.selection.layer
        i = self.names.index(layer) if layer in self.names else None
        self.axis.set_highlight(i)
        self.heat.set_highlight(i)
        acc = self.latest.get(layer) if layer is not None else None
        if i is not None and acc is not None and np.isfinite(acc):
            self.marker.setData([float(i)], [acc])
        else:
            self.marker.setData([], [])
        self._caption(layer)

    def _caption(self, layer: str | None) -> None:
        if not self.latest or self.run is None:
            return
        inner = {n: a for n, a in self.latest.items() if n != INPUT and np.isfinite(a)}
        parts = [WHAT, f"Weights of step {self.latest_step:,}:"]
        if INPUT in self.latest:
            parts.append(f"raw input {self.latest[INPUT]:.0%},")
        if inner:
            best = max(inner, key=inner.get)
            parts.append(f"best <b>{best}</b> {inner[best]:.0%}")
        if layer in self.latest:
            parts[-1] += ";"
            parts.append(f"selected <b>{layer}</b> {self.latest[layer]:.0%}")
        parts[-1] += f" (chance {1 / max(2, len(self.run.class_names)):.0%})."
        self.caption.setText(" ".join(parts))

    # ------------------------------------------------------------------ selection
    def selection_changed(self, changed: frozenset[str]) -> None:
        if "layer" in changed:
            self._highlight()

    def _select(self, index: int) -> None:
        if 0 <= index < len(self.names) and self.names[index] != INPUT:
            self.selection.set(layer=self.names[index])

    def _row_clicked(self, row: int) -> None:
        self._select(row)

    def _plot_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.latest:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        pos = vb.mapSceneToView(event.scenePos())
        i = int(round(pos.x()))
        if abs(pos.x() - i) <= 0.4:
            self._select(i)
