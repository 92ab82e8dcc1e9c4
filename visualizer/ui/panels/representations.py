"""Representations: every layer's view of the same held-out samples, flattened to 2-D.

One small scatter plot per layer, input to output: the first two principal components
(PCA) of the layer's pooled features, points coloured by true class. Early layers mix the
classes; as training goes on, later layers pull them apart into clusters. Clicking a point
picks that sample in every plot; clicking a plot selects its layer.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.analysis_controls import AnalysisControls
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.category_axis import abbreviate
from visualizer.ui.widgets.colormaps import class_color
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import HIGHLIGHT

NAME = "representations"  # the analysis stream this panel owns
KIND = "projections"
INPUT = "input"
SAMPLES = 500
REFRESH_S = 10.0
POINT_SIZE = 4
TITLE_CHARS = 14
PICK_RADIUS_PX = 7
MIN_CELL_PX = 110  # a plot never gets smaller than this: deep models scroll instead
FRAME_PEN = pg.mkPen((200, 200, 200), width=1)
SELECTED_PEN = pg.mkPen(HIGHLIGHT, width=3)
UNKNOWN = (120, 120, 120)
WHAT = ("Each small plot is one layer's representation of the same held-out samples, projected on its "
        "first two principal components (PCA; the corner % is the share of the variance along each); "
        "colour = true class.")


class RepresentationsPanel(AnalysisPanel):
    """Small multiples of 2-D PCA scatter plots, one per layer in forward order, coloured by
    class; the picked point is ringed in every plot, the selected layer's plot is framed."""

    title = "Representations"
    key = "representations"
    analyses = (NAME,)
    max_fps = 2.0  # render only checks whether a refresh is due

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(WHAT)
        self.legend = caption_label("")
        self.controls = AnalysisControls("Run now", "Project the layers now, on a snapshot of the current weights",
                                         REFRESH_S)
        self.controls.run_clicked.connect(self.run_now)
        self.controls.cancel_clicked.connect(lambda: self.cancel(NAME))
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.ci.setContentsMargins(2, 2, 2, 2)
        self.grid.ci.setSpacing(4)
        self.grid.setToolTip("Click a point to pick that sample in every plot; click a plot's title or "
                             "background to select its layer.")
        self.grid.scene().sigMouseClicked.connect(self._clicked)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.grid)
        self._columns = 0
        self.body = Placeholder(self.scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(self.legend)
        layout.addWidget(self.controls)
        layout.addWidget(self.body, 1)

        self.names: list[str] = []
        self.plots: list[pg.PlotItem] = []
        self.scatters: list[pg.ScatterPlotItem] = []
        self.rings: list[pg.ScatterPlotItem] = []
        self.notes: list[pg.LabelItem] = []  # explained variance, in each plot's corner
        self.points: dict[str, np.ndarray] = {}
        self.explained: dict[str, np.ndarray] = {}
        self.labels = np.zeros(0, np.int64)
        self.row_labels: np.ndarray | None = None
        self.row_positions: np.ndarray | None = None
        self.picked: int | None = None
        self.step: int | None = None
        self._brushes: list[Any] = []
        self.body.show_message("The projections appear here after the first run.")

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self.names = [INPUT, *run.layer_names]
        self.controls.reset()
        self.points, self.explained, self.step = {}, {}, None
        probe, sample = np.asarray(run.probe_indices), self.selection.sample
        self.picked = int(probe[sample]) if sample is not None and 0 <= sample < len(probe) else None
        self.labels = np.zeros(0, np.int64)
        self.row_labels = self.row_positions = None
        self._brushes = []
        self._build_grid()
        present = np.unique(run.analysis_labels).tolist() if run.analysis_labels is not None else []
        self.legend.setText("Class: " + " &nbsp;".join(
            f"<span style='color: rgb{class_color(c)}'>●</span>&nbsp;{self._class_name(c)}" for c in present))
        self.caption.setText(WHAT)
        self.body.show_message("The projections appear here after the first run "
                               f"(every ~{REFRESH_S:g} s while training runs, or press <b>Run now</b>).")

    def _build_grid(self) -> None:
        """One plot per layer, made once per run and updated in place afterwards."""
        self.grid.clear()
        self.plots, self.scatters, self.rings, self.notes = [], [], [], []
        self._columns = 0
        for name in self.names:
            plot = pg.PlotItem()
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.vb.setBorder(FRAME_PEN)
            plot.setTitle(abbreviate(name, TITLE_CHARS), size="8pt")
            note = pg.LabelItem("", size="7pt", color="#555", parent=plot.vb)
            note.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-2, 1))
            note.setToolTip("Share of the layer's variance along the two axes shown (PC1 + PC2)")
            scatter = pg.ScatterPlotItem(size=POINT_SIZE, pen=None)
            ring = pg.ScatterPlotItem(size=11, pen=pg.mkPen((0, 0, 0), width=2), brush=None)
            ring.setZValue(10)
            plot.addItem(scatter)
            plot.addItem(ring)
            self.plots.append(plot)
            self.scatters.append(scatter)
            self.rings.append(ring)
            self.notes.append(note)
        self._place()

    def _place(self) -> None:
        """Lay the plots out in as many columns as fit the panel's shape, no plot smaller than
        MIN_CELL_PX; the rows that do not fit scroll."""
        n = len(self.plots)
        if not n:
            return
        width = max(1, self.scroll.viewport().width())
        height = max(1, self.scroll.viewport().height())
        aspect = max(0.5, min(2.5, width / height))
        columns = max(1, min(n, math.ceil(math.sqrt(n * aspect)), width // MIN_CELL_PX))
        if columns != self._columns:
            for plot in self.plots:
                if plot.scene() is not None:
                    self.grid.ci.removeItem(plot)
            for i, plot in enumerate(self.plots):
                self.grid.ci.addItem(plot, row=i // columns, col=i % columns)
            self._columns = columns
        self.grid.setMinimumHeight(math.ceil(n / columns) * MIN_CELL_PX)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._place()

    def _class_name(self, c: int) -> str:
        names = self.run.class_names if self.run is not None else []
        return names[c] if 0 <= c < len(names) else f"class {c}"

    # ------------------------------------------------------------------ requests
    def render(self, frame: Frame | None) -> None:
        """Nothing to draw per frame: start a projection run when one is due."""
        if self.run is not None and frame is not None and self.controls.due(frame.step):
            self.run_now()

    def run_now(self) -> None:
        if self.run is None:
            return
        self.request_with_status(NAME, KIND, "projecting…", samples=SAMPLES)

    def analysis_update(self, update: Any) -> None:
        if not self.controls.show_update(update):
            return
        if update.state == "error" and not self.points:
            self.body.show_message(f"The projections failed: {update.message}")
        if update.state != "done" or not isinstance(update.result, dict):
            return
        self.step = (update.tag or {}).get("step")
        first = next(iter(update.result.values()), None)
        self.row_labels = getattr(first, "labels", None)  # per-token data: each point's class at its position
        self.row_positions = getattr(first, "positions", None)
        self._brushes = []
        self.points = {n: np.asarray(p.points, dtype=np.float32) for n, p in update.result.items() if n in self.names}
        self.explained = {n: np.asarray(p.explained, dtype=np.float64) for n, p in update.result.items()
                          if n in self.names}
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        if not self.points or self.run is None:
            return
        self.body.show_content()
        n = max(len(p) for p in self.points.values())
        self._set_labels(n)
        for name, plot, scatter, note in zip(self.names, self.plots, self.scatters, self.notes):
            pts = self.points.get(name)
            if pts is None or not len(pts):
                scatter.setData([], [])
                note.setText("no result")
                continue
            scatter.setData(pos=pts, brush=self._brushes[: len(pts)], size=POINT_SIZE, pen=None)
            ev = self.explained.get(name, np.zeros(2))
            note.setText(f"{ev[0]:.0%} + {ev[1]:.0%}")
            finite = pts[np.isfinite(pts).all(1)]
            if len(finite):
                lo, hi = finite.min(0).astype(np.float64), finite.max(0).astype(np.float64)
                span = np.maximum(hi - lo, 1e-6 * np.maximum(1.0, np.abs(lo)))
                hi = lo + span
                # head room at the top keeps the points clear of the variance note in the corner
                plot.vb.setRange(xRange=(float(lo[0] - 0.05 * span[0]), float(hi[0] + 0.05 * span[0])),
                                 yRange=(float(lo[1] - 0.05 * span[1]), float(hi[1] + 0.25 * span[1])), padding=0)
        self._show_selection()
        self.shown = {"points": dict(self.points), "labels": self.labels.copy(), "layers": list(self.names),
                      "explained": dict(self.explained), "picked": self.picked}

    def _set_labels(self, n: int) -> None:
        """Labels of the first ``n`` analysis samples (the Projection order) and their brushes."""
        if len(self._brushes) == n:
            return
        labels = self.row_labels if self.row_labels is not None else \
            (self.run.analysis_labels if self.run is not None else None)
        if labels is not None and len(labels) >= n and np.ndim(labels) == 1:
            self.labels = np.asarray(labels[:n]).astype(np.int64)
            self._brushes = [pg.mkBrush(*class_color(int(c)), 210) for c in self.labels]
        else:  # no labels for these samples: grey, and say so
            self.labels = np.full(n, -1, np.int64)
            self._brushes = [pg.mkBrush(*UNKNOWN, 200)] * n

    def _show_selection(self) -> None:
        layer = self.selection.layer
        for name, plot, ring in zip(self.names, self.plots, self.rings):
            plot.vb.setBorder(SELECTED_PEN if name == layer else FRAME_PEN)
            title = abbreviate(name, TITLE_CHARS)
            plot.setTitle(f"<b>{title}</b>" if name == layer else title, size="8pt")
            pts = self.points.get(name)
            if self.picked is not None and pts is not None and self.picked < len(pts):
                ring.setData(pos=pts[self.picked:self.picked + 1])
            else:
                ring.setData([], [])
        self._caption()

    def _caption(self) -> None:
        text = WHAT
        if self.step is not None:
            text += f" Weights of step {self.step:,}, {len(self.labels)} samples."
        positions = self.row_positions
        if positions is not None:
            text += (" One point per sequence, each at one position (drawn once, the same at every refresh): "
                     "colour = the target at that position.")
        if self.picked is not None and self.picked < len(self.labels):
            c = int(self.labels[self.picked])
            true = self._class_name(c) if c >= 0 else "unknown"
            at = f" at position {int(positions[self.picked])}" if positions is not None and self.picked < len(positions) else ""
            text += f" Ringed: held-out sample #{self.picked}{at} (true class: <b>{true}</b>)."
        self.caption.setText(text)

    # ------------------------------------------------------------------ selection
    def selection_changed(self, changed: frozenset[str]) -> None:
        if "sample" in changed and self.run is not None:
            probe = np.asarray(self.run.probe_indices)
            s = self.selection.sample
            if s is not None and 0 <= s < len(probe):
                self.picked = int(probe[s])
        if changed & {"layer", "sample"}:
            self._show_selection()
            if self.points:
                self.shown["picked"] = self.picked

    def pick(self, index: int) -> None:
        """Ring held-out sample ``index`` in every plot; a probe-batch sample is also selected."""
        self.picked = int(index)
        if self.run is not None:
            hits = np.flatnonzero(np.asarray(self.run.probe_indices) == index)
            if len(hits):
                self.selection.set(sample=int(hits[0]))
        self._show_selection()
        if self.points:
            self.shown["picked"] = self.picked

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        for name, plot in zip(self.names, self.plots):
            if not plot.sceneBoundingRect().contains(pos):
                continue
            index = self._point_at(name, plot, pos)
            if index is not None:
                self.pick(index)
            elif name != INPUT:
                self.selection.set(layer=name)
            return

    def _point_at(self, name: str, plot: pg.PlotItem, scene_pos: QPointF) -> int | None:
        """The point nearest ``scene_pos`` within PICK_RADIUS_PX pixels, if any."""
        pts = self.points.get(name)
        if pts is None or not len(pts) or not plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        at = plot.vb.mapSceneToView(scene_pos)
        px, py = plot.vb.viewPixelSize()
        d2 = ((pts[:, 0] - at.x()) / px) ** 2 + ((pts[:, 1] - at.y()) / py) ** 2
        d2 = np.where(np.isfinite(d2), d2, np.inf)
        i = int(np.argmin(d2))
        return i if d2[i] <= PICK_RADIUS_PX**2 else None
