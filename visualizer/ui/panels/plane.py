"""2-D data: the input plane with the model's decision regions, redrawn live, and (as in
TensorFlow Playground) every hidden unit's output over the plane as small heat maps."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QSplitter, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import class_color
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import HIGHLIGHT, ImageGrid, line_plot

MAX_UNITS = 8  # unit maps per layer
MAX_LAYERS = 8  # layers with unit maps
PICK_RADIUS_PX = 12  # clicking this close to a probe point selects it
PASS_THROUGH = {"Dropout", "Identity", "AlphaDropout"}  # same output as their input at eval time
NOT_2D = "2-D view is for 2-D datasets (spiral, moons, …)"


def region_colors(probs: np.ndarray) -> np.ndarray:
    """(R, R, K) class probabilities -> (R, R, 3) RGB in 0..255: each cell takes its
    predicted class colour, paler the closer the model is to guessing (1/K); cells with
    non-finite probabilities (a run that blew up) are grey."""
    k = probs.shape[-1]
    bad = ~np.isfinite(probs).all(-1)
    probs = np.where(bad[..., None], 0.0, probs)
    pred = probs.argmax(-1)
    conf = probs.max(-1)
    sure = np.clip((conf - 1.0 / k) / max(1e-6, 1.0 - 1.0 / k), 0.0, 1.0) if k > 1 else np.ones_like(conf)
    alpha = (0.12 + 0.68 * sure)[..., None]
    colors = np.array([class_color(i) for i in range(k)], dtype=np.float32)[pred]
    rgb = 255.0 - alpha * (255.0 - colors)
    rgb[bad] = 190.0
    return rgb.astype(np.float32)


class PlanePanel(Panel):
    """Decision regions over the input plane with the training points, and the hidden
    units' outputs over the same plane, grouped by layer.

    The unit maps sit beside the plane in a wide panel and below it in a tall one, one
    column per layer (data flowing left to right, as in TensorFlow Playground) or one row
    per layer, whichever gives the larger maps in the space there is.
    """

    title = "2-D data"
    key = "plane"

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label("")
        self.plane = line_plot("x1", "x2", legend=False)
        item = self.plane.getPlotItem()
        item.setAspectLocked(True)
        item.showGrid(x=False, y=False)
        item.setDownsampling(auto=False)
        item.setClipToView(False)
        self.legend = caption_label("")  # below the plot, so it never hides data
        self.regions = pg.ImageItem()
        self.regions.setZValue(-10)
        item.addItem(self.regions)
        self.point_items: list[pg.ScatterPlotItem] = []
        self.probe_item = pg.ScatterPlotItem(size=9, symbol="s", pen=pg.mkPen(20, 20, 20, width=1.5), brush=None)
        self.probe_item.setZValue(5)
        self.ring = pg.ScatterPlotItem(size=20, symbol="o", brush=None, pen=pg.mkPen(HIGHLIGHT, width=3.5))
        self.ring.setZValue(6)
        item.addItem(self.probe_item)
        item.addItem(self.ring)
        self.plane.scene().sigMouseClicked.connect(self._plane_clicked)

        self.units_caption = caption_label("")
        self.units = ImageGrid(cmap="diverging", label="output ÷ layer scale")
        self.units.plot.showAxis("left")
        self.units.plot.showAxis("top")
        font = QFont()
        font.setPointSize(7)
        for side in ("left", "top"):
            self.units.plot.getAxis(side).setStyle(tickLength=0, tickFont=font)
        self.units.tile_clicked.connect(self._unit_clicked)
        self.units.installEventFilter(self)
        pen = QPen(HIGHLIGHT, 0)
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.layer_box = QGraphicsRectItem()
        self.layer_box.setPen(pen)
        self.layer_box.setVisible(False)
        self.units.plot.addItem(self.layer_box)
        self.unit_layers: list[str] = []
        self.layer_columns = True  # unit maps one column per layer, else one row per layer (see _prefer_columns)
        self._grid = (0, 0)  # (resolution, units per layer) of the tiles shown
        self._units: dict[str, np.ndarray] = {}

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.caption)
        lv.addWidget(self.plane, 1)
        lv.addWidget(self.legend)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.units_caption)
        rv.addWidget(self.units, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.body = Placeholder(self.splitter)
        self.body.show_message("No run yet.")
        self._planar = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.body)

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        item = self.plane.getPlotItem()
        for scatter in self.point_items:
            item.removeItem(scatter)
        self.point_items = []
        self.regions.clear()
        self._units = {}
        self._render_units()
        self._planar = run.points is not None and run.point_labels is not None and tuple(run.input_shape) == (2,)
        if not self._planar:
            self.body.show_message(NOT_2D)
            return
        self.body.show_content()
        points, labels = np.asarray(run.points, dtype=float), np.asarray(run.point_labels)
        for k, name in enumerate(run.class_names):
            mine = points[labels == k]
            scatter = pg.ScatterPlotItem(mine[:, 0], mine[:, 1], size=5, pen=pg.mkPen(30, 30, 30, width=0.8),
                                         brush=pg.mkBrush(*class_color(k)), name=name)
            scatter.setZValue(1)
            item.addItem(scatter)
            self.point_items.append(scatter)
        probes = self._probe_points()
        self.probe_item.setData(probes[:, 0], probes[:, 1])
        swatches = [f"<span style='color:rgb{class_color(k)}'>●</span>&nbsp;{name}" for k, name in enumerate(run.class_names)]
        self.legend.setText("Classes: " + " &nbsp; ".join(swatches) + " &nbsp;&nbsp; □&nbsp;probe sample (click to select), "
                            f"<span style='color:rgb{HIGHLIGHT.getRgb()[:3]}'>◯</span>&nbsp;selected")
        lo, hi = points.min(0), points.max(0)
        pad = (hi - lo) * 0.15
        item.setRange(xRange=(float(lo[0] - pad[0]), float(hi[0] + pad[0])),
                      yRange=(float(lo[1] - pad[1]), float(hi[1] + pad[1])), padding=0)

    def is_planar(self) -> bool:
        """True when the run's inputs are 2-D points (otherwise the panel only shows a note)."""
        return self._planar

    def _probe_points(self) -> np.ndarray:
        if self.run is None or not len(self.run.probe_inputs):
            return np.zeros((0, 2))
        return np.asarray(self.run.probe_inputs, dtype=float).reshape(len(self.run.probe_inputs), -1)[:, :2]

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Unit maps beside the plane when the panel is wide, below it when tall."""
        super().resizeEvent(event)
        w, h = event.size().width(), event.size().height()
        beside = w >= 1.2 * h
        wanted = Qt.Orientation.Horizontal if beside else Qt.Orientation.Vertical
        if self.splitter.orientation() != wanted:
            self.splitter.setOrientation(wanted)
        # the plane is square: give it about its height (width) and the unit maps the rest
        if beside:
            plane = int(min(0.6 * w, max(0.4 * w, h - 20)))
            self.splitter.setSizes([plane, w - plane])
        else:
            plane = int(min(0.6 * h, max(0.4 * h, w + 60)))
            self.splitter.setSizes([plane, h - plane])

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        if watched is self.units and event.type() == QEvent.Type.Resize and self._grid[0]:
            self._render_units()  # the grid's shape may now fit better the other way round
        return super().eventFilter(watched, event)

    def _prefer_columns(self, layers: int, units: int) -> bool:
        """One column per layer (TensorFlow-Playground style) when that gives maps at least as
        large as one row per layer, and large enough for the layer names above them."""
        width, height = self.units.width() - 80, self.units.height()  # less the colour bar
        as_columns = min((width - 35) / max(1, layers), (height - 45) / max(1, units))
        as_rows = min((width - 75) / max(1, units), (height - 25) / max(1, layers))
        # or when rows would make the maps clearly smaller (a narrow pane beside the plane: rows of 9 px
        # tiles with their two-line labels overlapping)
        return as_columns >= max(as_rows, 36.0) or as_columns > 1.25 * as_rows

    # ------------------------------------------------------------------ clicks
    def pick_sample_at(self, x: float, y: float) -> int | None:
        """The probe sample within a few pixels of plane position (x, y), if any."""
        probes = self._probe_points()
        if not self.is_planar() or not len(probes):
            return None
        px, py = self.plane.getPlotItem().vb.viewPixelSize()
        d = np.hypot((probes[:, 0] - x) / max(px, 1e-12), (probes[:, 1] - y) / max(py, 1e-12))
        i = int(np.argmin(d))
        return i if d[i] <= PICK_RADIUS_PX else None

    def _plane_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = self.plane.getPlotItem().vb.mapSceneToView(event.scenePos())
        sample = self.pick_sample_at(pos.x(), pos.y())
        if sample is not None:
            self.selection.set(sample=sample)

    def tile_index(self, layer: int, unit: int) -> int:
        """Index in the unit grid of ``unit`` of the ``layer``-th shown layer."""
        per_layer = self._grid[1]
        return unit * len(self.unit_layers) + layer if self.layer_columns else layer * per_layer + unit

    def _unit_clicked(self, index: int) -> None:
        per_layer = self._grid[1]
        if not per_layer or not self.unit_layers:
            return
        if self.layer_columns:
            unit, layer = divmod(index, len(self.unit_layers))
        else:
            layer, unit = divmod(index, per_layer)
        if layer < len(self.unit_layers) and unit < len(self.shown.get("units", {}).get(self.unit_layers[layer], ())):
            self.selection.set(layer=self.unit_layers[layer], channel=unit)

    # ------------------------------------------------------------------ render
    def layers_for_units(self, units: dict[str, np.ndarray]) -> list[str]:
        """Which layers get unit maps: each hidden block's output (after its activation), in
        forward order; the output layer only when it is selected."""
        groups = self._blocks(units)
        selected = self.selection.layer
        chosen = [shown for i, (shown, members) in enumerate(groups)
                  if i < len(groups) - 1 or len(groups) == 1 or selected in members]
        if len(chosen) > MAX_LAYERS:  # keep the layers around the selection
            centre = next((i for i, (_, members) in enumerate(groups) if selected in members), 0)
            start = int(np.clip(centre - MAX_LAYERS // 2, 0, len(chosen) - MAX_LAYERS))
            chosen = chosen[start : start + MAX_LAYERS]
        return chosen

    def _blocks(self, units: dict[str, np.ndarray]) -> list[tuple[str, list[str]]]:
        """(shown layer, all its block's layers) per block ("hidden1.linear", "hidden1.relu", …
        form block "hidden1"); the shown one is the block's last layer that changes values."""
        if self.run is None:
            return []
        kinds = {l.name: l.kind for l in self.run.layers}
        groups: dict[str, list[str]] = {}
        for name in self.run.layer_names:
            groups.setdefault(name.rsplit(".", 1)[0] if "." in name else name, []).append(name)
        blocks = []
        for members in groups.values():
            mapped = [m for m in members if m in units]
            kept = [m for m in mapped if kinds.get(m) not in PASS_THROUGH] or mapped
            if kept:
                blocks.append((kept[-1], members))
        return blocks

    def highlighted_layer(self) -> str | None:
        """The shown layer of the block holding the selected layer (its units are the same units)."""
        selected = self.selection.layer
        for shown, members in self._blocks(self._units):
            if selected in members and shown in self.unit_layers:
                return shown
        return None

    def render(self, frame: Frame | None) -> None:
        if self.run is None or not self.is_planar():
            self.shown = {}
            return
        plane = frame.plane if frame is not None else None
        if plane is None:
            if "probs" not in self.shown:
                self.caption.setText("Decision regions appear with the first captured frame.")
            else:
                self._render_selection_marks()
            return
        probs = np.asarray(plane["probs"], dtype=np.float32)
        if probs.ndim != 3 or probs.shape[-1] < 1:
            self.caption.setText("Nothing to show: this frame's plane probabilities have an unexpected shape.")
            return
        extent = tuple(float(v) for v in plane["extent"])
        rgb = region_colors(probs)
        r_rows, r_cols = probs.shape[:2]
        dx = (extent[1] - extent[0]) / max(1, r_cols - 1)
        dy = (extent[3] - extent[2]) / max(1, r_rows - 1)  # grid points are cell centres
        self.regions.setImage(rgb, levels=(0, 255), autoLevels=False)
        self.regions.setRect(QRectF(extent[0] - dx / 2, extent[2] - dy / 2, dx * r_cols, dy * r_rows))
        self.shown = {"probs": probs, "regions": rgb, "classes": probs.argmax(-1), "extent": np.array(extent)}
        self._units = dict(plane.get("units") or {})
        self._render_units()
        self._render_selection_marks(frame)

    def _render_units(self, relayout: bool = False) -> None:
        units = {k: v for k, v in self._units.items() if np.ndim(v) == 3 and len(v)}
        names = self.layers_for_units(units)
        self.unit_layers = names
        shown: dict[str, np.ndarray] = {}
        scale: dict[str, float] = {}
        if not names:
            self.units.set_tiles(np.zeros((0, 1, 1)), (-1.0, 1.0))
            self._grid = (0, 0)
            self.units_caption.setText("Nothing to show: this model has no dense hidden layers to map over the plane."
                                       if "probs" in self.shown else "")
            self.shown.update(units=shown, unit_scale=scale)
            self._render_unit_highlight()
            return
        r = int(np.shape(units[names[0]])[-1])
        per_layer = max(min(MAX_UNITS, len(units[n])) for n in names)
        columns = self._prefer_columns(len(names), per_layer)
        relayout = relayout or columns != self.layer_columns or self._grid[1] != per_layer
        self.layer_columns = columns
        self._grid = (r, per_layer)
        tiles = np.full((len(names) * per_layer, r, r), np.nan, dtype=np.float32)
        for i, name in enumerate(names):
            maps = np.asarray(units[name][:MAX_UNITS], dtype=np.float32)
            shown[name] = maps
            finite = np.abs(maps[np.isfinite(maps)])
            m = float(finite.max()) if finite.size else 0.0
            scale[name] = m if m > 0 else 1.0
            for u in range(len(maps)):
                tiles[self.tile_index(i, u)] = maps[u, ::-1] / scale[name]  # the grid draws row 0 on top; y points up
        cols = len(names) if self.layer_columns else per_layer
        self.units.set_tiles(tiles, (-1.0, 1.0), cols=cols)
        if relayout:  # same tile count, new arrangement: the grid does not refit by itself
            self.units.plot.autoRange(padding=0.02)
        pitch = r + 1
        stagger, lines = False, 2
        labels = [f"{name}\n±{scale[name]:.2g}" for name in names]
        if self.layer_columns:  # narrow columns: one name part per line, every other label raised if still too wide
            labels = [f"{name.replace('.', chr(10))}\n±{scale[name]:.2g}" for name in names]
            font_metrics = QFontMetrics(self.units.plot.getAxis("top").style["tickFont"] or QFont())
            widest = max(font_metrics.horizontalAdvance(part) for label in labels for part in label.split("\n"))
            column_px = min((self.units.width() - 115) / len(names), (self.units.height() - 45) / per_layer)
            stagger = len(names) > 1 and widest + 6 > column_px
            if stagger:
                labels = [label + ("\n" if i % 2 else "") for i, label in enumerate(labels)]
            lines = max(label.count("\n") + 1 for label in labels)
            self.units.plot.getAxis("top").setHeight(lines * font_metrics.lineSpacing() + 8)
        else:
            self.units.plot.getAxis("top").setHeight(None)
        layer_ticks = [(i * pitch + r / 2, label) for i, label in enumerate(labels)]
        unit_ticks = [(u * pitch + r / 2, str(u)) for u in range(per_layer)]
        top, left = (layer_ticks, unit_ticks) if self.layer_columns else (unit_ticks, layer_ticks)
        self.units.plot.getAxis("top").setTicks([top])
        self.units.plot.getAxis("left").setTicks([left])
        self.units.plot.setLabel("top", "" if self.layer_columns else "unit")
        self.units.plot.setLabel("left", "unit" if self.layer_columns else "")
        self.units_caption.setText("Hidden units over the plane: blue &lt; 0 &lt; red; ± = layer scale "
                                   "(its largest |output|). Click one to select it.")
        self.shown.update(units=shown, unit_scale=scale)
        self._render_unit_highlight()

    def _render_selection_marks(self, frame: Frame | None = None) -> None:
        run = self.run
        sample = self.sample_index()
        probes = self._probe_points()
        if len(probes):
            self.ring.setData([probes[sample, 0]], [probes[sample, 1]])
        else:
            self.ring.setData([], [])
        frame = frame if frame is not None else self.history.latest
        text = f"Step {frame.step}: " if frame is not None else ""
        text += "decision regions, colour = predicted class (paler = less sure)."
        if len(probes):
            true = run.class_names[int(run.probe_labels[sample])] if len(run.probe_labels) > sample else "?"
            text += f" Ring: probe sample {sample}, true {true}"
            if frame is not None and frame.probe is not None and sample < len(frame.probe.probs):
                p = frame.probe.probs[sample]
                k = int(np.argmax(p))
                text += f", predicted {run.class_names[k] if k < len(run.class_names) else k} {100 * float(p[k]):.0f}%"
            text += "."
        self.caption.setText(text)
        self._render_unit_highlight()

    def _render_unit_highlight(self) -> None:
        layer, channel = self.highlighted_layer(), self.selection.channel
        r, per_layer = self._grid
        if layer is None or not r:
            self.units.set_highlight(None)
            self.layer_box.setVisible(False)
            return
        i = self.unit_layers.index(layer)
        n = len(self.shown.get("units", {}).get(layer, ()))
        pitch = r + 1
        if self.layer_columns:
            self.layer_box.setRect(QRectF(i * pitch - 1.0, -1.0, pitch + 1.0, n * pitch + 1.0))
        else:
            self.layer_box.setRect(QRectF(-1.0, i * pitch - 1.0, n * pitch + 1.0, pitch + 1.0))
        self.layer_box.setVisible(True)
        self.units.set_highlight(self.tile_index(i, channel) if channel is not None and 0 <= channel < n else None)

    def selection_changed(self, changed: frozenset[str]) -> None:
        """A new layer may change which unit maps are shown; sample and channel only move marks."""
        if self.run is None or not self.is_planar():
            return
        if "layer" in changed:
            self._render_units()
        self._render_selection_marks()
