"""Signed attribution scores drawn three ways, each with several methods side by side and a
diverging colour map centred on zero (blue: against the class, red: for it) with its legend:
a heat map over an image (:class:`OverlayRow`), bars per feature (:class:`BarsRow`) and
coloured tokens (:class:`TokenRow`). Each method is scaled by its own largest |value| (heat
maps: by the 99th percentile of |value|, so a few extreme pixels do not wash out the rest),
and the colour bar runs from -1 to 1."""
from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from visualizer.ui.widgets.colormaps import colormap
from visualizer.ui.widgets.plots import layout_widget  # (also sets pyqtgraph's white background and axis order)
from visualizer.ui.widgets.rgb_images import as_rgb
from visualizer.ui.widgets.token_text import diverging_key, token_cells

SCALE_LABEL = "attribution ÷ its max |a|"
IMAGE_SCALE_LABEL = "÷ 99th pct of |a|"  # short: the bar can be low; its tooltip says the rest
DIVERGING = "diverging"
COLORBAR_PX = 115.0  # room kept for the colour bar, its ticks and its label


def normalised(values: np.ndarray) -> tuple[np.ndarray, float]:
    """``values`` divided by their largest |value| (the scale, returned; 1 when all are zero)."""
    v = np.nan_to_num(np.asarray(values, np.float32))
    scale = float(np.abs(v).max()) if v.size else 0.0
    return (v / scale if scale > 0 else v), (scale if scale > 0 else 1.0)


def robust_normalised(values: np.ndarray, percentile: float = 99.0) -> tuple[np.ndarray, float]:
    """``values`` divided by the ``percentile`` of their |values| and clipped to [-1, 1] (the
    scale, returned): a few extreme pixels, common in gradient maps, do not wash out the rest."""
    v = np.nan_to_num(np.asarray(values, np.float32))
    scale = float(np.percentile(np.abs(v), percentile)) if v.size else 0.0
    if scale <= 0:
        return normalised(v)
    return np.clip(v / scale, -1.0, 1.0), scale


def signed_rgba(values: np.ndarray, opacity: float) -> np.ndarray:
    """Values in [-1, 1] -> RGBA uint8 through the diverging map; alpha grows with |value|
    (times ``opacity``), so where the evidence is weak the image underneath shows through."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32)), -1.0, 1.0)
    rgb = colormap(DIVERGING).map(((v + 1.0) / 2.0).ravel(), mode="byte")[:, :3].reshape(*v.shape, 3)
    alpha = np.clip(np.abs(v) * 1.5, 0.0, 1.0) * float(np.clip(opacity, 0.0, 1.0)) * 255.0
    return np.concatenate([rgb, alpha[..., None]], -1).astype(np.uint8)


def signed_brushes(values: np.ndarray) -> list:
    """One brush per value in [-1, 1], from the diverging map."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32)), -1.0, 1.0)
    return [pg.mkBrush(*c) for c in colormap(DIVERGING).map((v + 1.0) / 2.0, mode="byte")]


def _colorbar(label: str = SCALE_LABEL) -> pg.ColorBarItem:
    bar = pg.ColorBarItem(values=(-1.0, 1.0), colorMap=colormap(DIVERGING), interactive=False, width=12, label=label)
    scale = "the 99th percentile of its |values| (larger ones are drawn as ±1)" if label == IMAGE_SCALE_LABEL \
        else "its own largest |value| (shown in its title)"
    bar.setToolTip(f"Each method's values divided by {scale}. "
                   "Red: evidence for the target class; blue: against it; white or clear: none")
    return bar


def image_hwc(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) model input -> (H, W, 3) float in [0, 1] for display."""
    a = np.asarray(image, np.float32)
    a = a[..., None] if a.ndim == 2 else np.transpose(a, (1, 2, 0))
    return np.clip(np.nan_to_num(as_rgb(a[..., :3] if a.shape[-1] >= 3 else a)), 0.0, 1.0)


def faded_grey(rgb: np.ndarray, amount: float = 0.45) -> np.ndarray:
    """An (H, W, 3) image as pale grey, so colours drawn over it read as the heat map's own."""
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat((1.0 - amount + amount * grey)[..., None], 3, -1)


class _Title(pg.LabelItem):
    """A tile title that never widens its column (a long one may run past it)."""

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)
        self.setPreferredWidth(0)


class OverlayRow(QWidget):
    """The input image, then one heat map over it per method, and a shared colour bar."""

    def __init__(self) -> None:
        super().__init__()
        self.view = layout_widget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.titles: list[pg.LabelItem] = []
        self.bases: list[pg.ImageItem] = []
        self.overlays: list[pg.ImageItem] = []
        self.colorbar: pg.ColorBarItem | None = None
        self._maps: list[np.ndarray] = []
        self.opacity = 0.7

    def _build(self, n: int) -> None:
        self.view.clear()
        self.titles, self.bases, self.overlays = [], [], []
        for col in range(n + 1):
            title = _Title(size="8pt")
            self.view.addItem(title, row=0, col=col)
            vb = self.view.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMouse=False)
            vb.setMenuEnabled(False)
            base, overlay = pg.ImageItem(), pg.ImageItem()
            vb.addItem(base)
            vb.addItem(overlay)
            self.titles.append(title)
            self.bases.append(base)
            self.overlays.append(overlay)
        self.colorbar = _colorbar(IMAGE_SCALE_LABEL)
        self.view.addItem(self.colorbar, row=1, col=n + 1)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Every tile the same width, whatever its title; the colour bar keeps what it needs."""
        n = len(self.bases)
        if not n:
            return
        width = max(40.0, (self.view.width() - COLORBAR_PX) / n)
        for col in range(n):
            self.view.ci.layout.setColumnFixedWidth(col, width)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def set_maps(self, image: np.ndarray, maps: list[np.ndarray], titles: list[str], input_title: str = "input") -> None:
        """``image`` (C, H, W); ``maps`` one (H, W) array per method, already in [-1, 1]."""
        if len(self.bases) != len(maps) + 1:
            self._build(len(maps))
        rgb = image_hwc(image)
        pale = faded_grey(rgb)  # under the heat maps: grey, so every colour there is the map's
        self._maps = [np.asarray(m, np.float32) for m in maps]
        self.titles[0].setText(input_title)
        for i, base in enumerate(self.bases):
            base.setImage(rgb if i == 0 else pale, levels=(0.0, 1.0), autoLevels=False)
            if i:
                self.titles[i].setText(titles[i - 1])
        for vb in (b.getViewBox() for b in self.bases):
            vb.autoRange(padding=0.02)
        self.set_opacity(self.opacity)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = opacity
        for overlay, m in zip(self.overlays[1:], self._maps):
            overlay.setImage(signed_rgba(m, opacity), levels=(0, 255), autoLevels=False)


class BarsRow(QWidget):
    """One horizontal bar chart per method (a bar per input feature) and a colour bar."""

    def __init__(self) -> None:
        super().__init__()
        self.view = layout_widget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.plots: list[pg.PlotItem] = []
        self.bars: list[pg.BarGraphItem] = []
        self.colorbar: pg.ColorBarItem | None = None

    def _build(self, n: int) -> None:
        self.view.clear()
        self.plots, self.bars = [], []
        for col in range(n):
            plot = self.view.addPlot(row=0, col=col)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.invertY(True)
            plot.showGrid(x=True, y=False, alpha=0.25)
            plot.addLine(x=0, pen=pg.mkPen((120, 120, 120), width=1))
            bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[])
            plot.addItem(bars)
            self.plots.append(plot)
            self.bars.append(bars)
        self.colorbar = _colorbar()
        self.view.addItem(self.colorbar, row=0, col=n)

    def set_values(self, values: list[np.ndarray], titles: list[str], feature_names: list[str]) -> None:
        """``values``: one (F,) array per method, in data units (bars) and coloured by value ÷ max |value|."""
        if len(self.plots) != len(values):
            self._build(len(values))
        ticks = [list(enumerate(feature_names))]
        for plot, bars, v, title in zip(self.plots, self.bars, values, titles):
            v = np.nan_to_num(np.asarray(v, np.float64).reshape(-1))
            unit, _ = normalised(v)
            y = np.arange(len(v))
            bars.setOpts(x0=np.minimum(v, 0.0), y=y, width=np.abs(v), brushes=signed_brushes(unit),
                         pens=[pg.mkPen((90, 90, 90), width=0.5)] * len(v))
            plot.setTitle(title, size="8pt")
            plot.getAxis("left").setTicks(ticks)
            plot.setLabel("bottom", "attribution")
            m = float(np.abs(v).max()) if v.size else 1.0
            m = m if m > 0 else 1.0
            plot.setXRange(-1.05 * m, 1.05 * m, padding=0)
            plot.setYRange(-0.6, len(v) - 0.4, padding=0)


class TokenRow(QScrollArea):
    """One line of coloured tokens per method (background: the token's score)."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setWidget(self.label)

    @staticmethod
    def html(values: list[np.ndarray], titles: list[str], tokens: list[str]) -> str:
        rows = []
        for v, title in zip(values, titles):
            unit, _ = normalised(np.asarray(v).reshape(-1))
            rows.append(f"<p><b>{title}</b><br>{token_cells(tokens, unit)}</p>")  # titles are rich text
        key = diverging_key("−1 against", "+1 for the class")
        return "".join(rows) + f"<p>{key} ({escape(SCALE_LABEL)})</p>"

    def set_values(self, values: list[np.ndarray], titles: list[str], tokens: list[str]) -> None:
        self.label.setText(self.html(values, titles, tokens))
