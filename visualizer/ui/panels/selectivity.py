"""Class selectivity: when the units of a layer become class-specific during training.

For the selected layer, each unit's (or conv channel's) class-selectivity index (Morcos et
al. 2018: (mean for its preferred class - mean for the others) / (sum of both)) on the
held-out analysis set, over the analysis runs received while training (a units x steps heat
map), beside the newest index of every unit as bars coloured by the class it prefers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QHBoxLayout, QToolTip, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.analysis_controls import AnalysisControls
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import class_color
from visualizer.ui.widgets.history_heatmap import HistoryHeatmap, StepHistory
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import HIGHLIGHT

NAME = "selectivity"  # the analysis stream this panel owns
KIND = "selectivity"
HISTORY = 200  # runs kept per layer
REFRESH_S = 10.0
SPECIFIC = 0.5  # an index from which a unit counts as class-specific (3x the drive for one class)
WHAT = ("Class selectivity of a unit: how much more it fires for its preferred class than for the others "
        "(0 = the same for every class, 1 = for one class only).")


class SelectivityPanel(AnalysisPanel):
    """Selectivity index of every unit of the selected layer over training steps, and the
    newest index per unit coloured by its preferred class; click a unit to select it."""

    title = "Class selectivity"
    key = "selectivity"
    analyses = (NAME,)
    max_fps = 2.0  # render only checks whether a new run is due

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(WHAT)
        self.controls = AnalysisControls("Run now", "Measure selectivity now, on a snapshot of the current weights",
                                         REFRESH_S)
        self.controls.run_clicked.connect(self.run_now)
        self.controls.cancel_clicked.connect(lambda: self.cancel(NAME))
        self.heat = HistoryHeatmap("unit", "selectivity index", "training step (weights analysed)")
        self.heat.row_clicked.connect(self._select_unit)
        self.heat.view.view.scene().sigMouseMoved.connect(
            lambda pos: self._hover(self.heat.plot.vb, self.heat.view.view, pos))

        self.bars_view = pg.GraphicsLayoutWidget()
        self.bars_view.ci.setContentsMargins(2, 2, 2, 2)
        self.bars_plot = self.bars_view.addPlot()
        self.bars_plot.setLabel("bottom", "newest index")
        self.bars_plot.hideAxis("left")
        self.bars_plot.invertY(True)
        self.bars_plot.setMenuEnabled(False)
        self.bars_plot.setMouseEnabled(False, False)
        self.bars_plot.hideButtons()
        self.bars_plot.showGrid(x=True, alpha=0.3)
        self.bars_plot.setXRange(0, 1, padding=0.1)  # room for the end labels
        self.bars_plot.getAxis("bottom").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")]])
        self.bars = pg.BarGraphItem(x0=[], y=[], height=[], width=[])
        self.bars_plot.addItem(self.bars)
        self.bar_box = pg.BarGraphItem(x0=[], y=[], height=[], width=[], brush=None, pen=pg.mkPen(HIGHLIGHT, width=3))
        self.bar_box.setZValue(10)
        self.bars_plot.addItem(self.bar_box)
        self.bars_view.setMinimumWidth(90)
        self.bars_view.setToolTip("Click a unit to select it in every panel.")
        self.bars_view.scene().sigMouseClicked.connect(self._bars_clicked)
        self.bars_view.scene().sigMouseMoved.connect(lambda pos: self._hover(self.bars_plot.vb, self.bars_view, pos))
        self.legend = caption_label("")

        views = QWidget()
        row = QHBoxLayout(views)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        row.addWidget(self.heat, 3)
        row.addWidget(self.bars_view, 1)
        self.body = Placeholder(views)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.controls)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.legend)

        self.runs: dict[str, StepHistory] = {}  # layer -> its index over the runs received
        self.latest: dict[str, tuple[int, Any]] = {}  # layer -> (step, Selectivity)
        self.shown_layer: str | None = None
        self.body.show_message("Selectivity appears here after the first run.")

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self.runs, self.latest, self.shown_layer = {}, {}, None
        self.requested.pop(NAME, None)
        self.controls.reset()
        self.legend.setText("Bar colour = the class the unit fires for most: " + " &nbsp;".join(
            f"<span style='color: rgb{class_color(i)}'>■</span>&nbsp;{n}" for i, n in enumerate(run.class_names)))
        self.caption.setText(WHAT)
        self.body.show_message("Selectivity appears here after the first run "
                               f"(every ~{REFRESH_S:g} s while training runs, or press <b>Run now</b>).")

    # ------------------------------------------------------------------ requests
    def render(self, frame: Frame | None) -> None:
        """Nothing to draw per frame: ask for the selected layer when it changed or a refresh is due."""
        if self.run is None:
            return
        layer = self.selected_layer()
        if layer is None:
            return
        if self.requested.get(NAME, {}).get("layer") != layer:
            self.run_now()
        elif frame is not None and self.controls.due(frame.step):
            self.run_now()

    def run_now(self) -> None:
        layer = self.selected_layer()
        if self.run is None or layer is None:
            return
        self.request_with_status(NAME, KIND, f"measuring {layer}…", layer=layer)
        if layer not in self.latest:
            self.body.show_message(f"Measuring the class selectivity of <b>{layer}</b>…")

    def analysis_update(self, update: Any) -> None:
        if not self.controls.show_update(update):
            return
        layer = (update.tag or {}).get("layer")
        if update.state == "error" and layer not in self.latest:
            self.body.show_message(f"Nothing to show for <b>{layer}</b>: {update.message}")
        if update.state != "done" or update.result is None or layer is None:
            return
        step = int((update.tag or {}).get("step") or 0)
        result = update.result
        self.latest[layer] = (step, result)
        self.runs.setdefault(layer, StepHistory(HISTORY)).add(step, np.asarray(result.index, dtype=np.float64))
        if layer == self.selected_layer():
            self._draw(layer)

    # ------------------------------------------------------------------ drawing
    def _draw(self, layer: str) -> None:
        if layer not in self.latest:
            return
        step, result = self.latest[layer]
        index = np.asarray(result.index, dtype=np.float64)
        preferred = np.asarray(result.preferred, dtype=np.int64)
        units = len(index)
        self.body.show_content()
        if self.shown_layer != layer or self.heat.rows != units:
            self.heat.set_rows([str(u) for u in range(units)])
            self.heat.plot.setLabel("left", f"{self._unit_word(layer)} of {layer}")
        self.shown_layer = layer
        runs = self.runs[layer]
        steps, heat = runs.steps(), runs.matrix()
        self.heat.set_history(steps, heat)
        y = np.arange(units) + 0.5
        self.bars.setOpts(x0=np.zeros(units), y=y, height=np.full(units, 0.8), width=np.clip(index, 0, 1),
                          brushes=[pg.mkBrush(*class_color(int(c))) for c in preferred], pens=None, pen=None)
        self.bars_plot.setYRange(0, units, padding=0)
        self._highlight()
        self._caption(layer, step, index, steps, heat)
        self.shown = {"index": index, "preferred": preferred, "heat": heat, "steps": steps, "layer": layer}

    def _unit_word(self, layer: str) -> str:
        info = next((l for l in (self.run.layers if self.run else []) if l.name == layer), None)
        return "channel" if info is not None and len(info.output_shape) == 3 else "unit"

    def _class_name(self, c: int) -> str:
        names = self.run.class_names if self.run is not None else []
        return names[c] if 0 <= c < len(names) else f"class {c}"

    def _highlight(self) -> None:
        channel = self.selection.channel
        units = self.heat.rows
        ok = channel is not None and 0 <= channel < units and self.shown_layer == self.selected_layer()
        self.heat.set_highlight(channel if ok else None)
        if ok:
            self.bar_box.setOpts(x0=[0.0], y=[channel + 0.5], height=[0.96], width=[1.0])
        else:
            self.bar_box.setOpts(x0=[], y=[], height=[], width=[])

    def _caption(self, layer: str, step: int, index: np.ndarray, steps: np.ndarray, heat: np.ndarray) -> None:
        units, word = len(index), self._unit_word(layer)
        specific = int((index >= SPECIFIC).sum())
        text = (f"{WHAT} <b>{layer}</b>, {units} {word}s, weights of step {step:,}: mean {np.nanmean(index):.2f}; "
                f"{specific} of {units} class-specific (≥ {SPECIFIC:g})")
        if len(steps) > 1:
            counts = (heat >= SPECIFIC).sum(0)
            if counts[-1] == counts[0]:
                text += f", as many as at step {int(steps[0]):,}"
            else:
                text += f", {'up' if counts[-1] > counts[0] else 'down'} from {int(counts[0])} at step {int(steps[0]):,}"
            gains = np.diff(counts)
            if gains.max() > 0:
                j = int(np.argmax(gains))
                text += f"; the biggest gain, +{int(gains[j])}, between steps {int(steps[j]):,} and {int(steps[j + 1]):,}"
        text += "."
        channel = self.selection.channel
        if channel is not None and 0 <= channel < units:
            _, result = self.latest[layer]
            text += (f" Selected {word} {channel}: {index[channel]:.2f}, fires most for "
                     f"<b>{self._class_name(int(result.preferred[channel]))}</b>.")
        self.caption.setText(text)

    def unit_tip(self, unit: int) -> str:
        """What hovering a unit's row tells: its newest index and preferred class."""
        if self.shown_layer not in self.latest:
            return ""
        step, result = self.latest[self.shown_layer]
        if not 0 <= unit < len(result.index):
            return ""
        word = self._unit_word(self.shown_layer)
        return (f"{word} {unit}: selectivity {float(result.index[unit]):.2f} at step {step:,}, "
                f"fires most for {self._class_name(int(result.preferred[unit]))}")

    # ------------------------------------------------------------------ selection
    def selection_changed(self, changed: frozenset[str]) -> None:
        if "layer" in changed:
            layer = self.selected_layer()
            if layer in self.latest:
                self._draw(layer)
            self.render(None)  # ask for the new layer
        elif "channel" in changed and self.shown_layer is not None:
            self._draw(self.shown_layer)

    def _select_unit(self, unit: int) -> None:
        if self.shown_layer is not None and 0 <= unit < self.heat.rows:
            self.selection.set(layer=self.shown_layer, channel=int(unit))

    def _bars_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.bars_plot.vb
        if vb.sceneBoundingRect().contains(event.scenePos()):
            self._select_unit(int(np.floor(vb.mapSceneToView(event.scenePos()).y())))

    def _hover(self, vb: pg.ViewBox, view: pg.GraphicsView, pos: QPointF) -> None:
        if not vb.sceneBoundingRect().contains(pos):
            return
        tip = self.unit_tip(int(np.floor(vb.mapSceneToView(pos).y())))
        if tip:
            QToolTip.showText(view.mapToGlobal(view.mapFromScene(pos)), tip, view)
