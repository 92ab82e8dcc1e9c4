"""Feature visualisation: an input optimised from noise to excite the selected channel as much
as possible (activation maximisation), and a gallery of the first channels of every conv
layer side by side, where early layers show simple patterns and later ones complex ones.
Both are computed on demand (they are expensive) on a snapshot of the weights."""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.job_status import JobStatus
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid, line_plot
from visualizer.ui.widgets.rgb_images import as_rgb
from visualizer.ui.widgets.unit_names import unit_count, unit_word

VIS, GALLERY = "feature_vis", "gallery"
STEPS = 128  # optimisation steps of one visualisation
GALLERY_CHANNELS = 4
GALLERY_PAD = 3
STALE_OPACITY = 0.35
TRACE = (31, 119, 180)
NEEDS_IMAGES = ("<b>Feature visualisation needs image inputs.</b> This model's input is {what}, so the input "
                "that excites a unit most is not a picture (and there are no conv layers for a layer gallery).")
PLANE_HINT = " The Plane panel shows what each unit responds to over the input plane."


def conv_layers(run: RunInfo | None) -> list[str]:
    """The run's convolution layers in forward order (the ones the gallery shows)."""
    return [l.name for l in run.layers if l.kind == "Conv2d"] if run else []


class FeatureVisPanel(AnalysisPanel):
    """Activation maximisation of the selected channel (image and optimisation trace), and a
    layer gallery of the first channels of every conv layer, each with Run and Cancel."""

    title = "Feature visualisation"
    key = "features"
    analyses = (VIS, GALLERY)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        # (1) the selected unit
        self.caption = caption_label()
        self.vis_status = JobStatus("Visualise", "Optimise an input from noise to excite the selected channel")
        self.vis_status.run_clicked.connect(self.visualise)
        self.vis_status.cancel_clicked.connect(lambda: self.cancel(VIS))
        self.image = ImageGrid(colorbar=False)
        self.image.setToolTip("The input that this unit responds to most, found by gradient ascent from noise")
        self.trace_plot = line_plot("optimisation step", "mean activation of the unit", legend=False)
        self.trace_plot.setXRange(0, STEPS, padding=0.02)
        self.trace_plot.getPlotItem().setMouseEnabled(False, False)
        self.trace_plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.trace = self.trace_plot.plot([], [], pen=pg.mkPen(TRACE, width=1.5))
        views = QHBoxLayout()
        views.setContentsMargins(0, 0, 0, 0)
        views.addWidget(self.image, 3)
        views.addWidget(self.trace_plot, 2)
        holder = QWidget()
        holder.setLayout(views)
        self.vis_body = Placeholder(holder)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(3)
        top_layout.addWidget(self.caption)
        top_layout.addWidget(self.vis_status)
        top_layout.addWidget(self.vis_body, 1)
        # (2) the layer gallery
        self.gallery_caption = caption_label()
        self.gallery_status = JobStatus("Run gallery", "Visualise the first channels of every conv layer")
        self.gallery_status.run_clicked.connect(self.run_gallery)
        self.gallery_status.cancel_clicked.connect(lambda: self.cancel(GALLERY))
        self.gallery = ImageGrid(colorbar=False)
        self.gallery.setToolTip("Click an image to select that layer and channel in every panel")
        self.gallery.tile_clicked.connect(self._gallery_clicked)
        plot = self.gallery.plot
        for side in ("left", "top"):
            plot.showAxis(side)
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen(None))
            axis.setTickPen(pg.mkPen(None))
            axis.setTextPen(pg.mkPen((20, 20, 20)))
            axis.setStyle(tickLength=0)
        plot.setLabel("top", "channel")
        self.gallery_body = Placeholder(self.gallery)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.setSpacing(3)
        bottom_layout.addWidget(self.gallery_caption)
        bottom_layout.addWidget(self.gallery_status)
        bottom_layout.addWidget(self.gallery_body, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setChildrenCollapsible(False)
        self.body = Placeholder(splitter)  # a message in place of both parts when inputs are not images
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.body)
        self._reset()
        self.body.show_message("No run yet.")

    def _reset(self) -> None:
        self.requested.clear()
        self._vis: Any = None
        self._vis_step: int | None = None
        self._live = np.full(STEPS, np.nan, np.float32)
        self._gallery: dict[str, list[Any]] | None = None
        self._gallery_order: list[str] = []
        self._gallery_step: int | None = None
        self.trace.setData([], [])
        self.image.set_tiles(np.zeros((0, 1, 1, 3), np.float32), (0.0, 1.0))
        self.gallery.set_tiles(np.zeros((0, 1, 1, 3), np.float32), (0.0, 1.0))

    # ------------------------------------------------------------------ run and selection
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._reset()
        image_input = len(run.input_shape) == 3
        for status in (self.vis_status, self.gallery_status):
            status.reset()
        self.vis_status.run_button.setEnabled(image_input)
        if not image_input:
            what = "a 2-D point (x₁, x₂)" if run.data_kind == "plane" else f"of shape {tuple(run.input_shape)}"
            self.body.show_message(NEEDS_IMAGES.format(what=what) + (PLANE_HINT if run.data_kind == "plane" else ""))
            self.gallery_status.run_button.setEnabled(False)
            return
        self.body.show_content()
        convs = conv_layers(run)
        self.gallery_status.run_button.setEnabled(bool(convs))
        self.vis_body.show_message("Press <b>Visualise</b> to optimise an input for the selected channel "
                                   "(a few seconds).")
        if convs:
            self.gallery_caption.setText(
                f"<b>Layer gallery</b>: the first {GALLERY_CHANNELS} channels of each of the {len(convs)} conv layers, "
                "visualised the same way, earliest layer at the top: early layers prefer simple patterns "
                "(colours, edges), later ones more complex shapes.")
            self.gallery_body.show_message("Press <b>Run gallery</b> to compute it (it takes a while).")
        else:
            self.gallery_caption.setText("<b>Layer gallery</b>")
            self.gallery_body.show_message("The layer gallery shows conv channels, and this model has no conv "
                                           "layers. Visualise a dense unit above instead.")
        self._update_caption()

    def render(self, frame: Frame | None) -> None:
        """Nothing is recomputed per frame: feature visualisation runs only when asked."""

    def selection_changed(self, changed: frozenset[str]) -> None:
        if changed & {"layer", "channel"} and self.run is not None and len(self.run.input_shape) == 3:
            self._update_caption()
            self._mark_gallery()

    def wanted(self) -> tuple[str, int] | None:
        """The selected (layer, channel); channel 0 when none is chosen."""
        if self.run is None or not self.run.layers:
            return None
        layer = self.selected_layer()
        channel = self.selection.channel
        return layer, 0 if channel is None else int(channel)

    # ------------------------------------------------------------------ requests
    def visualise(self) -> None:
        target = self.wanted()
        if target is None or len(self.run.input_shape) != 3:
            return
        layer, channel = target
        count = unit_count(self.run, layer)
        if count is not None and channel >= count:
            self.vis_status.label.setText(f"{layer} has no {unit_word(self.run, layer)} {channel}")
            return
        self._live[:] = np.nan
        self.trace.setData([], [])
        self.request(VIS, "feature_vis", layer=layer, channel=channel, steps=STEPS)
        self.vis_status.started(f"optimising an input for {layer} {unit_word(self.run, layer)} {channel}…")
        self._update_caption()

    def run_gallery(self) -> None:
        if not conv_layers(self.run) or len(self.run.input_shape) != 3:
            return
        self.request(GALLERY, "gallery", channels=GALLERY_CHANNELS)
        self.gallery_status.started("visualising the first channels of every conv layer…")

    def analysis_update(self, update: Any) -> None:
        if update.name == VIS:
            self._vis_update(update)
        elif update.name == GALLERY:
            self._gallery_update(update)

    # ------------------------------------------------------------------ (1) one unit
    def _vis_update(self, update: Any) -> None:
        self.vis_status.show_update(update)
        if update.state == "running" and update.data is not None and 0 < update.done <= len(self._live):
            self._live[update.done - 1] = float(update.data)
            self.vis_body.show_content()  # the trace climbs while the image is being made
            steps = np.arange(1, update.done + 1)
            self.trace.setData(steps, self._live[: update.done], connect="finite")
            self.shown["live_trace"] = self._live[: update.done].copy()
            self.vis_status.label.setText(f"step {update.done}/{update.total}: activation {float(update.data):.3f}")
        elif update.state == "done":
            self._show_vis(update.result, (update.tag or {}).get("step"))
        elif update.state == "error":
            self.vis_body.show_message(f"Could not visualise this unit: {update.message}")
            self.shown["error"] = update.message
        elif update.state == "cancelled" and self._vis is not None:
            self.trace.setData(np.arange(1, len(self._vis.trace) + 1), self._vis.trace)

    def _show_vis(self, vis: Any, step: int | None) -> None:
        self._vis, self._vis_step = vis, step
        image = as_rgb(np.asarray(vis.image, np.float32))
        self.image.set_tiles(image[None], (0.0, 1.0), cols=1)
        trace = np.asarray(vis.trace, np.float32)
        self.trace.setData(np.arange(1, len(trace) + 1), trace)
        self.trace_plot.setXRange(0, max(len(trace), 1), padding=0.02)
        self.vis_body.show_content()
        self.shown.update({"image": np.asarray(vis.image), "trace": trace, "layer": vis.layer,
                           "channel": int(vis.channel), "activation": float(vis.activation)})
        self.shown.pop("error", None)
        self._update_caption()

    def _update_caption(self) -> None:
        vis, target = self._vis, self.wanted()
        if target is None:
            return
        layer, channel = target
        word = unit_word(self.run, layer)
        hint = " (click a channel in Activations or Filters to choose)" if self.selection.channel is None else ""
        if vis is None:
            self.caption.setText(f"<b>Feature visualisation</b> of <b>{layer}</b> {word} {channel}{hint}: "
                                 "the input this unit responds to most, optimised from noise.")
            return
        stale = (vis.layer, int(vis.channel)) != (layer, channel)
        self.image.image.setOpacity(STALE_OPACITY if stale else 1.0)
        self.trace.setOpacity(STALE_OPACITY if stale else 1.0)
        shown_word = unit_word(self.run, vis.layer)
        when = "" if self._vis_step is None else f", weights of step {self._vis_step:,}"
        trace = np.asarray(vis.trace)
        start = f"{trace[0]:.2f}" if len(trace) else "?"
        text = (f"<b>{vis.layer}</b> {shown_word} {int(vis.channel)}: an input optimised from noise to maximise the "
                f"{shown_word}'s mean activation, with jitter and blur regularisers so it stays image-like "
                f"({len(trace)} steps{when}). Right: the activation climbing from {start} to "
                f"{float(vis.activation):.2f} on the final image.")
        if stale:
            text = (f"<b style='color:#b35900'>Selection changed: press Visualise</b> for {layer} {word} "
                    f"{channel}{hint}. Dimmed, from before: {text}")
        self.caption.setText(text)
        self.shown["stale"] = stale

    # ------------------------------------------------------------------ (2) gallery
    def _gallery_update(self, update: Any) -> None:
        self.gallery_status.show_update(update)
        if update.state == "done":
            self._show_gallery(update.result or {}, (update.tag or {}).get("step"))
        elif update.state == "error":
            self.gallery_body.show_message(f"Could not compute the layer gallery: {update.message}")
            self.shown["gallery_error"] = update.message

    def _show_gallery(self, result: dict[str, list[Any]], step: int | None) -> None:
        order = [n for n in (self.run.layer_names if self.run else []) if n in result]
        order += [n for n in result if n not in order]
        images = {name: [np.asarray(v.image, np.float32) for v in result[name]] for name in order}
        self.shown["gallery"] = images
        if not order or not any(images.values()):
            self.gallery_body.show_message("The gallery came back empty: this model has no conv channels to show.")
            return
        first = next(v[0] for v in images.values() if v)
        h, w = first.shape[:2]
        cols = max(GALLERY_CHANNELS, max(len(v) for v in images.values()))
        tiles = np.full((len(order) * cols, h, w, 3), np.nan, np.float32)
        for r, name in enumerate(order):
            for c, img in enumerate(images[name][:cols]):
                if img.shape[:2] == (h, w):
                    tiles[r * cols + c] = as_rgb(img)
        self._gallery, self._gallery_order, self._gallery_step = result, order, step
        self._gallery_cols = cols
        self.gallery.set_highlight(None)
        self.gallery.set_tiles(tiles, (0.0, 1.0), cols=cols, pad=GALLERY_PAD)
        plot = self.gallery.plot
        rows = [(r * (h + GALLERY_PAD) + (h - 1) / 2, name) for r, name in enumerate(order)]
        plot.getAxis("left").setTicks([rows, []])
        plot.getAxis("top").setTicks([[(c * (w + GALLERY_PAD) + (w - 1) / 2, str(c)) for c in range(cols)], []])
        self.gallery_body.show_content()
        self._mark_gallery()
        when = "" if step is None else f" (weights of step {step:,})"
        self.gallery_caption.setText(
            f"<b>Layer gallery</b>{when}: the first {cols} channels of each conv layer, each an input optimised "
            "from noise to excite it, earliest layer at the top: early layers prefer simple patterns "
            "(colours, edges), later ones more complex shapes. Click one to select it.")

    def _mark_gallery(self) -> None:
        if self._gallery is None:
            return
        layer, channel = self.selection.layer, self.selection.channel
        index = None
        if layer in self._gallery_order and channel is not None:
            r = self._gallery_order.index(layer)
            if int(channel) < len(self._gallery[layer]):
                index = r * self._gallery_cols + int(channel)
        self.gallery.set_highlight(index)
        self.shown["gallery_mark"] = index

    def _gallery_clicked(self, index: int) -> None:
        if self._gallery is None:
            return
        r, c = divmod(int(index), self._gallery_cols)
        if r < len(self._gallery_order) and c < len(self._gallery[self._gallery_order[r]]):
            self.selection.set(layer=self._gallery_order[r], channel=c)
