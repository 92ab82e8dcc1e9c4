"""Gradients: why a network is not learning, and which layer died.

Per-layer gradient norms and update-to-weight ratios over steps (log scales, coloured by
depth, so vanishing or exploding gradients show as a fan of curves), and for the selected
layer the weight and gradient histograms over time as heat maps.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QTabWidget, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, LayerGradient, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import HEAT
from visualizer.ui.widgets.depth_key import DepthColorKey
from visualizer.ui.widgets.log_axis import use_decade_axis
from visualizer.ui.widgets.multi_curve import MultiCurveItem
from visualizer.ui.widgets.plots import HeatmapView, line_plot

HEALTHY_RATIO = 1e-3  # typical order of magnitude of ||update|| / ||weights|| per step
FEW_POINTS = 20  # curves with fewer points also get dots
MAX_COLUMNS = 512  # heat-map columns when capture steps are unevenly spaced
COUNT_LABEL = "log10(1 + count)"


def uniform_columns(steps: np.ndarray, rows: np.ndarray, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """Rows captured at ``steps`` laid out on evenly spaced step columns, so an image's
    x axis reads as steps; each column repeats the newest row at or before its step.
    Evenly spaced captures are returned as they are."""
    if len(steps) < 3:
        return steps, rows
    gaps = np.diff(steps)
    if gaps.min() > 0 and gaps.max() - gaps.min() <= 1e-6 * max(1.0, float(gaps.max())):
        return steps, rows
    finest = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
    n = int(min(max_columns, max(len(steps), (steps[-1] - steps[0]) / finest + 1)))
    grid = np.linspace(float(steps[0]), float(steps[-1]), n)
    idx = np.clip(np.searchsorted(steps, grid + 1e-9, side="right") - 1, 0, len(steps) - 1)
    return grid, rows[idx]


class GradientsPanel(Panel):
    """Gradient norm and update/weight ratio per parametrised layer over steps (log y,
    colour = depth), and weight / gradient histograms of the selected layer over time."""

    title = "Gradients"
    key = "gradients"
    max_fps = 5.0  # curves over many steps: a few redraws a second are plenty
    heavy = True

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label("Gradient norms appear after the first training step.")
        self.norm_plot = line_plot("step", "gradient norm ‖∇W‖", log_y=True, legend=False)
        self.ratio_plot = line_plot("step", "‖ΔW‖ / ‖W‖", log_y=True, legend=False)
        self.ratio_plot.setXLink(self.norm_plot)
        self.reference = pg.InfiniteLine(
            pos=np.log10(HEALTHY_RATIO), angle=0, movable=False,
            pen=pg.mkPen((90, 90, 90), width=1.2, style=Qt.PenStyle.DashLine),
            label="typical healthy size ≈ 1e-3",
            labelOpts={"position": 0.02, "color": (60, 60, 60), "anchors": [(0, 1.1), (0, 1.1)], "fill": (255, 255, 255, 190)})
        self.reference.setZValue(20)
        self.ratio_plot.addItem(self.reference, ignoreBounds=True)
        self.depth_key = DepthColorKey("layer (early = light, late = dark)")
        self.depth_key.setFixedWidth(140)
        self.depth_key.layer_clicked.connect(self._key_clicked)
        self.hist_caption = caption_label("")
        self.weights = HeatmapView(HEAT, "step", "weight value", COUNT_LABEL)
        self.grads = HeatmapView(HEAT, "step", "log10 |gradient|", COUNT_LABEL)
        # every layer's curve in one item per plot: a PlotDataItem each cost ~1 ms a frame per layer
        self.norm_lines, self.ratio_lines = (MultiCurveItem(log_y=True, dots_below=FEW_POINTS) for _ in range(2))
        for plot, lines in ((self.norm_plot, self.norm_lines), (self.ratio_plot, self.ratio_lines)):
            plot.addItem(lines)
            lines.clicked.connect(lambda name: self.selection.set(layer=name))
        self.colors: dict[str, tuple[int, int, int]] = {}
        self._styled: str | None = "<none>"

        for plot in (self.norm_plot.getPlotItem(), self.ratio_plot.getPlotItem(), self.weights.plot, self.grads.plot):
            for side in ("left", "bottom"):
                plot.getAxis(side).enableAutoSIPrefix(False)
        # at least one (two) decades in view, so the log axes get decade labels, not a crowd of minor ones
        self.norm_plot.getPlotItem().vb.setLimits(minYRange=1.0)
        self.ratio_plot.getPlotItem().vb.setLimits(minYRange=2.0)
        for plot in (self.norm_plot, self.ratio_plot):
            use_decade_axis(plot.getPlotItem())
            # one fixed width: the shared step axes line up, and new tick labels never re-lay the plots out
            plot.getPlotItem().getAxis("left").setWidth(58)
        self.norm_plot.getPlotItem().setLabel("bottom", "")  # shares the step axis below

        plots = QWidget()
        column = QVBoxLayout(plots)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.norm_plot, 3)
        column.addWidget(self.ratio_plot, 2)
        curves = QWidget()
        row = QHBoxLayout(curves)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        row.addWidget(plots, 1)
        row.addWidget(self.depth_key)
        hists = QWidget()
        lower = QVBoxLayout(hists)
        lower.setContentsMargins(0, 0, 0, 0)
        lower.setSpacing(0)
        lower.addWidget(self.hist_caption)
        lower.addWidget(self.weights, 1)
        lower.addWidget(self.grads, 1)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(curves, "All layers over steps")
        self.tabs.addTab(hists, "Histograms of one layer")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.tabs, 1)

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        colors = self.depth_key.set_layers(list(run.param_layers))
        self.colors = dict(zip(run.param_layers, colors))
        for lines in (self.norm_lines, self.ratio_lines):
            lines.set_curves({})
        self._styled = "<none>"
        for view in (self.weights, self.grads):
            view.image.clear()
        self.caption.setText("Gradient norms appear after the first training step.")
        self.hist_caption.setText("")

    def _key_clicked(self, index: int) -> None:
        if self.run is not None and 0 <= index < len(self.run.param_layers):
            self.selection.set(layer=self.run.param_layers[index])

    # ------------------------------------------------------------------ selection
    def histogram_layer(self) -> tuple[str | None, str]:
        """The parametrised layer whose histograms are shown, and a note when it is not the
        selected one (the nearest parametrised layer before the selection, else the first)."""
        if self.run is None or not self.run.param_layers:
            return None, ""
        params = self.run.param_layers
        selected = self.selected_layer()
        if selected in params:
            return selected, ""
        order = self.run.layer_names
        if selected in order:
            before = [n for n in order[: order.index(selected)] if n in params]
            if before:
                return before[-1], f"{selected} has no parameters: showing the nearest parametrised layer before it"
            return params[0], f"{selected} has no parameters, nor has any layer before it: showing the first parametrised layer"
        return params[0], ""

    def _style_curves(self, highlight: str | None) -> None:
        if highlight == self._styled:
            return
        self._styled = highlight
        for name, color in self.colors.items():
            pen = pg.mkPen(color, width=3.2 if name == highlight else 1)  # width 1: Qt's fast line path
            for lines in (self.norm_lines, self.ratio_lines):
                lines.set_pen(name, pen)
        for lines in (self.norm_lines, self.ratio_lines):
            lines.raise_curve(highlight)
        self.depth_key.set_highlight(self.run.param_layers.index(highlight) if highlight in self.colors else None)

    # ------------------------------------------------------------------ render
    def render(self, frame: Frame | None) -> None:
        if self.run is None:
            return
        layer, note = self.histogram_layer()
        self._style_curves(layer)
        grad_norm: dict[str, np.ndarray] = {}
        update_ratio: dict[str, np.ndarray] = {}
        steps = np.zeros(0)
        norms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self.colors:
            series = self.history.layers.get(name)
            if series is None:
                continue
            s, cols = series.data()
            has = np.isfinite(cols["grad_norm"])  # rows from paused captures carry no gradients
            known = np.isfinite(cols["update_ratio"])
            grad_norm[name] = cols["grad_norm"][has]
            update_ratio[name] = cols["update_ratio"][known]
            if not len(steps):
                steps = s[has]
            norms[name] = (s[has], grad_norm[name])
            ratios[name] = (s[known], update_ratio[name])
        self.norm_lines.set_curves(norms)
        self.ratio_lines.set_curves(ratios)
        self.shown = {"grad_norm": grad_norm, "steps": steps, "update_ratio": update_ratio, "hist_layer": layer}
        self._render_caption(layer, grad_norm)
        self._render_histograms(layer, note)

    def _render_caption(self, layer: str | None, grad_norm: dict[str, np.ndarray]) -> None:
        if self.run is not None and not self.run.param_layers:
            self.caption.setText(
                f"Per-layer gradients are not available: this TorchScript model's layers cannot be hooked "
                f"(its {self.run.num_params:,} parameters are still read for Filters and fine-tuning)."
                if self.hookless() else "This model has no trainable parameters: nothing to show.")
            return
        latest = {n: v[-1] for n, v in grad_norm.items() if len(v) and np.isfinite(v[-1])}
        if not latest:
            self.caption.setText("Gradient norms appear after the first training step (press → to step).")
            return
        text = "‖∇W‖ per layer, log scale: curves orders of magnitude apart = vanishing or exploding gradients."
        positive = [v for v in latest.values() if v > 0]
        if len(positive) >= 2:
            text += f" Largest ÷ smallest now: {max(positive) / min(positive):.3g}."
        if layer in latest:
            text += f" <b>{layer}</b>: {latest[layer]:.3g}."
        self.caption.setText(text)

    def _render_histograms(self, layer: str | None, note: str) -> None:
        views = (self.weights, self.grads)
        if layer is None:
            self.hist_caption.setText("Nothing to show: this model has no parametrised layers.")
            for view in views:
                view.image.clear()
            self.shown.update(weight_hist=np.zeros((0, 0)), grad_hist=np.zeros((0, 0)), hist_steps=np.zeros(0))
            return
        stats: LayerGradient | None = self.history.gradients.get(layer)
        if stats is None or layer not in self.history.hist_steps or not len(self.history.hist_steps[layer]):
            self.hist_caption.setText(f"Histograms of {layer} appear after the first training step.")
            for view in views:
                view.image.clear()
            self.shown.update(weight_hist=np.zeros((0, 0)), grad_hist=np.zeros((0, 0)), hist_steps=np.zeros(0))
            return
        raw_steps = self.history.hist_steps[layer].view().astype(np.float64)
        shown: dict[str, np.ndarray] = {}
        for name, view, store, edges in (
            ("weight_hist", self.weights, self.history.weight_hist, stats.weight_edges),
            ("grad_hist", self.grads, self.history.grad_hist, stats.grad_edges),
        ):
            steps, rows = uniform_columns(raw_steps, store[layer].view())
            image = np.log10(1.0 + rows.T.astype(np.float32))  # rows of the image = bins (y)
            dx = float(steps[1] - steps[0]) if len(steps) > 1 and steps[1] > steps[0] else 1.0
            finite = image[np.isfinite(image)]
            top = float(finite.max()) if finite.size else 1.0
            view.set_image(image, (0.0, top if top > 0 else 1.0),
                           rect=(float(steps[0]) - dx / 2, float(edges[0]), dx * len(steps), float(edges[-1] - edges[0])))
            shown[name] = rows
            shown["hist_steps"] = steps
        self.shown.update(shown)
        text = (f"<b>{layer}</b> over time: weights (top), gradients (bottom; lowest row = zero or "
                "&lt;1e-10, e.g. dead units). Colour = values per bin.")
        if note:
            text = f"<i>{note}.</i> " + text
        self.hist_caption.setText(text)
