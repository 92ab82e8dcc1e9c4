"""A log axis that labels whole decades only, so a short plot is not crowded with minor labels."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg


class DecadeLogAxis(pg.AxisItem):
    """Log-mode axis: labelled ticks at 10^k, unlabelled minor ticks at 2..9 x 10^k.

    pyqtgraph labels the minor ticks when fewer than about three decades are in view,
    which on a short plot gives a pile of overlapping numbers.
    """

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802 (pyqtgraph's name)
        lo, hi = int(math.floor(minVal)), int(math.ceil(maxVal))
        decades = [float(v) for v in range(lo, hi + 1) if minVal <= v <= maxVal]
        step = max(1, math.ceil(len(decades) / max(2, size / 40)))  # about one label per 40 px
        major = decades[::step]
        minor = [float(v + d) for v in range(lo, hi) for d in np.log10(np.arange(2, 10)) if minVal < v + d < maxVal]
        minor += [v for v in decades if v not in major]
        return [(1.0 * step, major), (None, minor)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [f"1e{int(round(v))}" if abs(v) >= 3 else f"{10.0 ** round(v):g}" for v in values]


def use_decade_axis(plot: pg.PlotItem, side: str = "left") -> DecadeLogAxis:
    """Give ``plot`` a :class:`DecadeLogAxis` on ``side``, keeping its label, grid and log mode."""
    old = plot.getAxis(side)
    label, grid = old.labelText, old.grid
    axis = DecadeLogAxis(side)
    axis.enableAutoSIPrefix(False)
    plot.setAxisItems({side: axis})
    plot.setLabel(side, label)
    axis.setGrid(grid)
    axis.setLogMode(plot.ctrl.logYCheck.isChecked() if side in ("left", "right") else plot.ctrl.logXCheck.isChecked())
    return axis
