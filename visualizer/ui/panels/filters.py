"""Filters: the learned kernels of the first layer (or of the selected conv layer) as
images, updated live, so you can watch edge and colour detectors form."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import symmetric_levels
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid
from visualizer.ui.widgets.tiles import grid_shape

MIN_PIXELS = 12  # kernels are upscaled (nearest neighbour) to at least this many pixels a side
GRID_ASPECT = 1.6


def rgb_display(kernels: np.ndarray) -> np.ndarray:
    """(O, h, w, 3) signed kernels -> [0, 1], each kernel on its own symmetric scale (0 -> 0.5 grey)."""
    k = np.nan_to_num(np.asarray(kernels, np.float32))
    peak = np.abs(k).reshape(k.shape[0], -1).max(1)
    peak = np.where(peak > 0, peak, 1.0)[:, None, None, None]
    return 0.5 + 0.5 * k / peak


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor`` times along both image axes (axes 1 and 2)."""
    if factor <= 1:
        return images
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


class FiltersPanel(Panel):
    """The first layer's kernels (RGB or diverging grey) or the selected conv layer's
    kernels averaged over input channels, as a clickable grid."""

    title = "Filters"
    key = "filters"

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(scale=1.0)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.grid = ImageGrid(cmap="diverging", colorbar=True, label="weight")
        self.grid.tile_clicked.connect(self._tile_clicked)
        self.grid.setToolTip("Click a kernel to select its layer and channel in every panel.")
        self.body = Placeholder(self.grid)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.body, 1)
        self._layer: str | None = None
        self._tiled_shape: tuple[int, ...] = ()
        self._key: tuple | None = None
        self._message("No run yet.")

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._key, self._layer = None, None
        self._clear()
        self._message("No frame yet: press Play (Space) or Step (→) to capture one.")

    def render(self, frame: Frame | None) -> None:
        if self.run is None:
            return
        if frame is None:
            self._message("No frame yet: press Play (Space) or Step (→) to capture one.")
            return
        selected, channel = self.selection.layer, self.selection.channel
        key = (id(frame), frame.step, frame.time, selected, channel)
        if key == self._key:
            return
        self._key = key
        order = [n for n in self.run.layer_names if n in frame.filters]
        order += [n for n in frame.filters if n not in order]
        if not order:
            self._nothing()
            return
        first = order[0]
        layer = selected if selected in frame.filters else first
        kernels = np.asarray(frame.filters[layer], np.float32)
        if kernels.ndim not in (3, 4) or kernels.shape[0] == 0:
            self._nothing(f"the kernels of {layer} have an unexpected shape {kernels.shape}")
            return
        rgb = kernels.ndim == 4 and kernels.shape[-1] == 3
        if rgb:
            display, levels = rgb_display(kernels), (0.0, 1.0)
        else:
            display, levels = np.nan_to_num(kernels), symmetric_levels(kernels)
        factor = max(1, math.ceil(MIN_PIXELS / max(kernels.shape[1:3])))
        display = upscale(display, factor).astype(np.float32)
        n = kernels.shape[0]
        self.body.show_content()
        self.grid.colorbar.setVisible(not rgb)
        self.grid.set_highlight(None)  # the old box must not count in the new view range
        tiled = self.grid.set_tiles(display, levels, cols=grid_shape(n, GRID_ASPECT)[1])
        if tiled.shape != self._tiled_shape:
            self.grid.plot.autoRange(padding=0.04)
            self._tiled_shape = tiled.shape
        self._layer = layer
        mark = channel if layer == selected and channel is not None and channel < n else None
        self.grid.set_highlight(mark)
        self.shown = {"layer": layer, "kernels": kernels, "display": display, "levels": np.array(levels),
                      "channel": mark}
        self.caption.setText(self._caption(frame, layer, first, selected, kernels, rgb, factor, mark, channel))

    def _caption(self, frame: Frame, layer: str, first: str, selected: str | None, kernels: np.ndarray,
                 rgb: bool, factor: int, mark: int | None, channel: int | None) -> str:
        info = next((l for l in self.run.layers if l.name == layer), None)
        kind = info.kind if info else "layer"
        n, h, w = kernels.shape[:3]
        total = int(info.output_shape[0]) if info and info.output_shape else n
        count = f"all {n}" if n >= total else f"first {n} of {total}"
        input_shaped = kind == "Linear"
        what = "units' weights as input-shaped images" if input_shaped else "kernels"
        size = f"{h}×{w}" + (" RGB" if rgb else "")
        head = f"<b>{layer}</b> ({kind}): {count} {what}, {size}"
        if factor > 1:
            head += " pixels (enlarged)"
        if rgb:
            how = ("each scaled on its own so 0 = mid grey; a kernel's colour is the input colour "
                   "it responds to, dark = the opposite colour")
        elif layer == first:
            how = "red = positive weight, blue = negative, white = 0; one scale for all"
        else:
            how = ("averaged over input channels; red = positive weight, blue = negative, "
                   "white = 0; one scale for all")
        if mark is not None:
            pick = f"selected: channel {mark}"
        elif layer == selected and channel is not None:
            pick = f"selected channel {channel} is not among those shown"
        else:
            pick = "click one to select it"
        text = f"{head} · step {frame.step}<br>{how} · {pick}"
        if selected is not None and selected != layer:
            kinds = {l.name: l.kind for l in self.run.layers}
            if selected not in kinds:
                why = "is not a layer of this model"
            elif kinds[selected] == "Linear":
                why = "is a dense layer: its weights are not image-shaped"
            else:
                why = "has no kernels"
            text = f"<i>{selected} {why}; showing {layer}.</i><br>{text}"
        return text

    def _nothing(self, why: str | None = None) -> None:
        self._clear()
        self._layer = None
        if why is None:
            if self.run.data_kind == "plane":
                first = self.run.param_layers[0] if self.run.param_layers else "the first layer"
                why = (f"No image-shaped filters for 2-D inputs: {first} has just 2 weights per unit, "
                       "one per input coordinate (x₁, x₂).")
            else:
                why = "This model has no convolution kernels or input-shaped first-layer weights to draw."
        else:
            why = f"Nothing to show because {why}."
        self._message(why)
        self.shown = {"layer": None}

    def _message(self, text: str) -> None:
        self.caption.setText("")
        self._key = None  # the next frame is drawn even if it is the same one
        self.body.show_message(text)

    def _clear(self) -> None:
        self.grid.set_tiles(np.zeros((0, 1, 1), np.float32), (-1.0, 1.0))
        self._tiled_shape = ()

    def _tile_clicked(self, index: int) -> None:
        if self._layer is not None:
            self.selection.set(layer=self._layer, channel=int(index))
