"""Activations: the selected sample's feature maps (or dense units) at the selected layer,
and the same sample followed through every layer, from input image to output probabilities."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import SEQUENTIAL, colormap, symmetric_levels
from visualizer.ui.widgets.image_strip import ImageStrip, arrow_label, colorize
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid
from visualizer.ui.widgets.probability_bars import ProbabilityBars
from visualizer.ui.widgets.tiles import grid_shape

DIVERGING = "diverging"
UNIT_CELL = 4  # a dense unit is drawn as a UNIT_CELL x UNIT_CELL block in the grid
GRID_ASPECT = 1.6  # tile grids a little wider than tall, like the panel


def layer_scale(batch: np.ndarray) -> tuple[tuple[float, float], str]:
    """Colour levels and map for one layer over the whole probe batch: diverging and
    symmetric around 0 when any value is negative, else sequential from 0 to the max."""
    finite = batch[np.isfinite(batch)] if batch.size else batch
    if finite.size and float(finite.min()) < 0:
        return symmetric_levels(finite), DIVERGING
    hi = float(finite.max()) if finite.size else 1.0
    return (0.0, hi if hi > 0 else 1.0), SEQUENTIAL


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(int(s)) for s in shape)


class ActivationsPanel(Panel):
    """Feature maps of one layer for one probe sample, on a fixed per-layer colour scale,
    above a "through the network" strip of that sample at every layer."""

    title = "Activations"
    key = "activations"

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(scale=1.0)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.grid = ImageGrid(cmap=SEQUENTIAL, colorbar=True, label="activation value")
        self.grid.tile_clicked.connect(self._tile_clicked)
        self.grid.setToolTip("Click a channel (or unit) to select it in every panel.")
        self.body = Placeholder(self.grid)
        self.strip_title = QLabel("<b>Through the network</b>: this sample at every layer, in forward order "
                                  "(mean over the shown channels; the selected channel at the selected layer). "
                                  "Click a layer to select it.")
        self.strip_title.setWordWrap(True)
        self.strip = ImageStrip(item_width=60, image_height=44)
        self.strip.setFixedHeight(100)
        self.strip.item_clicked.connect(self._strip_clicked)
        self.probs = ProbabilityBars(width=165, height=96)
        row = QHBoxLayout()
        row.setSpacing(2)
        row.addWidget(self.strip, 1)
        row.addWidget(arrow_label(self.strip.image_height), 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.probs, 0, Qt.AlignmentFlag.AlignTop)
        self.legend = QLabel("Strip colours, each layer on its own scale over the probe batch: "
                             "blue–white–red = signed (white = 0), dark blue–yellow = non-negative.")
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color: #555;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.strip_title)
        layout.addLayout(row)
        layout.addWidget(self.legend)
        self._cmap = SEQUENTIAL
        self._strip_layers: list[str] = []
        self._layer: str | None = None
        self._tiled_shape: tuple[int, ...] = ()
        self._key: tuple | None = None
        self._message("No run yet.")

    # ------------------------------------------------------------------ run and frames
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._strip_layers = list(run.layer_names)
        self.strip.set_items(["input", *self._strip_layers])
        self._key = None
        self._clear_grid()
        self.probs.set_probs(None, run.class_names)
        self._message("No frame yet: press Play (Space) or Step (→) to capture one.")

    def render(self, frame: Frame | None) -> None:
        if self.run is None:
            return
        if frame is None:
            self._message("No frame yet: press Play (Space) or Step (→) to capture one.")
            return
        layer = self.selected_layer()
        sample, channel = self.sample_index(), self.selection.channel
        key = (id(frame), frame.step, frame.time, layer, sample, channel)
        if key == self._key:
            return
        self._key = key
        self._layer = layer
        probs = self._probs(frame, sample)
        self.shown = {"layer": layer, "sample": sample, "channel": channel,
                      "strip_layers": list(self._strip_layers), "probs": probs}
        self._render_grid(frame, layer, sample, channel)
        self._render_strip(frame, layer, sample, channel, probs)

    # ------------------------------------------------------------------ the selected layer
    def _render_grid(self, frame: Frame, layer: str | None, sample: int, channel: int | None) -> None:
        act = frame.activations.get(layer) if layer else None
        if act is None or act.maps.ndim < 2 or act.maps.shape[0] <= sample:
            why = "this model has no such layer" if layer not in self._strip_layers else "it was not captured in this frame"
            self._clear_grid()
            self._message(f"Nothing to show for <b>{layer}</b> because {why}.")
            return
        batch = act.maps
        levels, cmap = layer_scale(batch)
        maps = batch[sample]
        if maps.ndim == 3:  # (C', h, w) feature maps
            images, unit = maps, "channel"
        elif maps.ndim == 1:  # (U',) dense units, one small block each
            images, unit = np.broadcast_to(maps[:, None, None], (maps.shape[0], UNIT_CELL, UNIT_CELL)), "unit"
        else:  # (T, D) tokens by features: one image
            images, unit = maps[None], "map"
        n = images.shape[0]
        cols = n if unit == "unit" and n <= 16 else grid_shape(n, GRID_ASPECT)[1]
        if cmap != self._cmap:
            self.grid.colorbar.setColorMap(colormap(cmap))
            self._cmap = cmap
        self.body.show_content()
        self.grid.set_highlight(None)  # the old box must not count in the new view range
        tiled = self.grid.set_tiles(np.ascontiguousarray(images, np.float32), levels, cols=cols)
        if tiled.shape != self._tiled_shape:  # a new layout (not only a new count): fit it in view
            self.grid.plot.autoRange(padding=0.04)
            self._tiled_shape = tiled.shape
        highlight = channel if channel is not None and unit != "map" and channel < n else None
        self.grid.set_highlight(highlight)
        self.shown.update(maps=maps, levels=np.array(levels))
        self._caption(frame, act.shape, layer, sample, channel, n, unit, maps.shape)

    def _caption(self, frame: Frame, full: tuple[int, ...], layer: str, sample: int, channel: int | None,
                 n: int, unit: str, shape: tuple[int, ...]) -> None:
        info = next((l for l in self.run.layers if l.name == layer), None)
        kind = f" ({info.kind})" if info else ""
        total = int(full[0]) if full else n
        if unit == "map":
            count = f"{_dims(shape)} map"
        else:
            what = f"{unit}s"
            count = f"all {n} {what}" if n >= total else f"first {n} of {total} {what}"
            if unit == "channel" and tuple(shape[1:]) != tuple(full[1:]):
                count += f", average-pooled to {_dims(shape[1:])}"
        if channel is None:
            pick = f"click a {unit} to select it" if unit != "map" else ""
        elif channel < n:
            pick = f"selected: {unit} {channel}"
        else:
            pick = f"selected {unit} {channel} is not among those shown"
        reading = " in reading order (0 top-left)" if unit != "map" else ""
        scale = "blue–white–red, 0 = white" if self._cmap == DIVERGING else "dark = 0, yellow = high"
        self.caption.setText(
            f"<b>{layer}</b>{kind}, output {_dims(full)} · {self._sample_text(frame, sample)}<br>"
            f"{count}{reading}; colour = activation ({scale}), one scale for all probe samples"
            + (f" · {pick}" if pick else "")
            + ("<br><i>Only the output can be shown: a TorchScript model's inner layers cannot be hooked.</i>"
               if self.hookless() else ""))

    def _sample_text(self, frame: Frame, sample: int) -> str:
        names = self.run.class_names

        def name(i: int) -> str:
            return names[i] if 0 <= i < len(names) else str(i)

        labels = self.run.probe_labels
        probs = self._probs(frame, sample)
        if labels.ndim == 2:  # per-token labels: true and predicted output sequences
            true = " ".join(name(int(k)) for k in labels[sample]) if sample < len(labels) else "?"
            pred = f", predicted: {' '.join(name(int(k)) for k in probs.argmax(-1))}" if probs.size else ""
            return f"sample {sample} (true: {true}{pred})"
        text = f"sample {sample} (true: {name(int(labels[sample])) if sample < len(labels) else '?'}"
        if probs.size:
            top = int(np.argmax(probs))
            text += f", predicted: {name(top)} {100 * float(probs[top]):.0f}%"
        return text + ")"

    # ------------------------------------------------------------------ the strip
    def _render_strip(self, frame: Frame, layer: str | None, sample: int, channel: int | None, probs: np.ndarray) -> None:
        self._render_input(sample)
        for i, name in enumerate(self._strip_layers, start=1):
            item = self.strip.items[i]
            act = frame.activations.get(name)
            if act is None or act.maps.ndim < 2 or act.maps.shape[0] <= sample:
                item.set_text("—")
                continue
            pick = channel if name == layer else None
            batch, title = self._strip_batch(act.maps, pick)
            levels, cmap = layer_scale(batch)
            item.set_image(colorize(batch[sample], levels, cmap))
            item.setToolTip(f"{name}: {title}")
        self.strip.set_highlight(self._strip_layers.index(layer) + 1 if layer in self._strip_layers else None)
        if self.run.probe_labels.ndim == 2:  # one distribution per token: no single bar chart
            self.probs.set_probs(None, self.run.class_names)
            return
        true = int(self.run.probe_labels[sample]) if sample < len(self.run.probe_labels) else None
        self.probs.set_probs(probs if probs.size else None, self.run.class_names, true)

    @staticmethod
    def _strip_batch(maps: np.ndarray, channel: int | None) -> tuple[np.ndarray, str]:
        """One compact (P, rows, cols) image per sample for a layer's strip item."""
        if maps.ndim == 4:
            if channel is not None and 0 <= channel < maps.shape[1]:
                return maps[:, channel], f"channel {channel}"
            return maps.mean(1), f"mean over {maps.shape[1]} channels"
        if maps.ndim == 2:  # dense: units as a short, wide strip
            p, u = maps.shape
            rows = max(1, round(math.sqrt(u / 2)))
            cols = math.ceil(u / rows)
            padded = np.full((p, rows * cols), np.nan, np.float32)
            padded[:, :u] = maps
            return padded.reshape(p, rows, cols), f"{u} units"
        return maps.reshape(maps.shape[0], maps.shape[1], -1), "map"

    def _render_input(self, sample: int) -> None:
        item = self.strip.items[0]
        inputs = self.run.probe_inputs
        if inputs is None or len(inputs) <= sample:
            item.set_text("—")
            return
        x = np.asarray(inputs[sample], np.float32)
        if x.ndim == 3 and x.shape[0] in (1, 3):
            rgb = np.repeat(x, 3, 0) if x.shape[0] == 1 else x
            item.set_image((np.clip(np.nan_to_num(rgb), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0))
        elif self.run.data_kind == "sequence" and self.run.tokens:  # token ids as symbols, a few per line
            tokens = self.run.tokens
            symbols = [tokens[t] if 0 <= t < len(tokens) else "?" for t in x.astype(np.int64).ravel()]
            item.set_text("\n".join(" ".join(symbols[i:i + 8]) for i in range(0, len(symbols), 8)))
        elif x.ndim == 1 and x.size <= 4:  # a point in the plane
            item.set_text("\n".join(f"x{'₁₂₃₄'[i]}={v:+.2f}" for i, v in enumerate(x)))
        else:
            item.set_text(_dims(x.shape))

    @staticmethod
    def _probs(frame: Frame, sample: int) -> np.ndarray:
        if frame.probe is None or frame.probe.probs.shape[0] <= sample:
            return np.zeros(0, np.float32)
        return np.asarray(frame.probe.probs[sample], np.float32)

    # ------------------------------------------------------------------ helpers and clicks
    def _message(self, text: str) -> None:
        self.caption.setText("")
        self._key = None  # the next frame is drawn even if it is the same one
        self.body.show_message(text)

    def _clear_grid(self) -> None:
        self.grid.set_tiles(np.zeros((0, 1, 1), np.float32), (0.0, 1.0))
        self._tiled_shape = ()

    def _tile_clicked(self, index: int) -> None:
        if self._layer is not None:
            self.selection.set(layer=self._layer, channel=int(index))

    def _strip_clicked(self, index: int) -> None:
        if 1 <= index <= len(self._strip_layers):
            self.selection.set(layer=self._strip_layers[index - 1])
