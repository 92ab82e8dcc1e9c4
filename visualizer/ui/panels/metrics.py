"""Metrics: train and validation loss and accuracy, and the learning rate, over steps."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QSplitter, QVBoxLayout
from PySide6.QtCore import Qt

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.log_axis import use_decade_axis
from visualizer.ui.widgets.plots import line_plot

TRAIN, VAL, LR = (31, 119, 180), (214, 39, 40), (90, 90, 90)


class MetricsPanel(Panel):
    """Loss (log scale) and accuracy against steps, train and validation, plus learning rate."""

    title = "Metrics"
    key = "metrics"
    max_fps = 5.0  # curves over many steps: a few redraws a second are plenty
    heavy = True

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.loss_plot = line_plot("step", "loss (cross-entropy)", log_y=True)
        self.acc_plot = line_plot("step", "accuracy", legend_corner="bottom right")  # accuracy climbs to the top right
        self.lr_plot = line_plot("step", "lr", legend=False)  # short: the strip is low
        self.lr_plot.setToolTip("learning rate")
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
        use_decade_axis(self.loss_plot.getPlotItem())
        self.acc_plot.setYRange(0, 1.02)
        self.acc_plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.acc_plot):  # x is shared: the bottom plot labels it
            plot.getPlotItem().getAxis("bottom").setStyle(showValues=False)
            plot.getPlotItem().setLabel("bottom", "")
        self.lr_plot.setXLink(self.loss_plot)
        self.lr_plot.setMaximumHeight(90)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            # one fixed width: the x axes line up, and new tick labels never re-lay the plots out
            plot.getPlotItem().getAxis("left").setWidth(54)

        def curve(plot: pg.PlotWidget, color: tuple[int, int, int], name: str, symbol: str | None = None) -> pg.PlotDataItem:
            # per-step curves 1 px wide: Qt draws those on its fast path (a wider pen is stroked,
            # which took half of the panel's paint); validation has few points, and dots, so 2 px
            width = 2 if symbol else 1
            return plot.plot([], [], pen=pg.mkPen(color, width=width), name=name, symbol=symbol,
                             symbolSize=5, symbolBrush=color, symbolPen=None)

        self.train_loss = curve(self.loss_plot, TRAIN, "train")
        self.val_loss = curve(self.loss_plot, VAL, "validation", "o")
        self.train_acc = curve(self.acc_plot, TRAIN, "train")
        self.val_acc = curve(self.acc_plot, VAL, "validation", "o")
        self.lr = curve(self.lr_plot, LR, "lr")
        splitter = QSplitter(Qt.Orientation.Vertical)
        for w in (self.loss_plot, self.acc_plot, self.lr_plot):
            splitter.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        for c in (self.train_loss, self.val_loss, self.train_acc, self.val_acc, self.lr):
            c.setData([], [])

    def render(self, frame: Frame | None) -> None:
        steps, m = self.history.metrics.data()
        vsteps, v = self.history.val.data()
        loss = np.where(m["train_loss"] > 0, m["train_loss"], np.nan)
        self.train_loss.setData(steps, loss, connect="finite")
        self.train_acc.setData(steps, m["train_acc"], connect="finite")
        self.lr.setData(steps, m["lr"], connect="finite")
        top = np.nanmax(m["lr"]) if np.isfinite(m["lr"]).any() else 1.0
        self.lr_plot.setYRange(0, 1.25 * top, padding=0)
        self.val_loss.setData(vsteps, np.where(v["val_loss"] > 0, v["val_loss"], np.nan), connect="finite")
        self.val_acc.setData(vsteps, v["val_acc"], connect="finite")
        self.shown = {"steps": steps, "train_loss": m["train_loss"], "val_steps": vsteps, "val_acc": v["val_acc"]}

    def selection_changed(self, changed: frozenset[str]) -> None:
        """Metrics do not depend on the selection."""
