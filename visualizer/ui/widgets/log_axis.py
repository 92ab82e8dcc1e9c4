"""A log axis that labels whole decades only, so a short plot is not crowded with minor labels."""
from __future__ import annotations

import math

import pyqtgraph as pg


class DecadeLogAxis(pg.AxisItem):
    """Log-mode axis: labels at 10^k, then (where they fit) at 2 and 5 x 10^k; the other
    minor ticks (3, 4, 6 … 9 x 10^k) are drawn without labels.

    pyqtgraph labels every minor tick when fewer than about three decades are in view,
    which on a short plot gives a pile of overlapping numbers.
    """

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802 (pyqtgraph's name)
        lo, hi = int(math.floor(minVal)), int(math.ceil(maxVal))
        decades = [float(v) for v in range(lo, hi + 1) if minVal <= v <= maxVal]
        step = max(1, math.ceil(len(decades) / max(2.0, size / 40.0)))  # about one label per 40 px
        major = decades[::step]

        def between(factors: tuple[int, ...]) -> list[float]:
            return [v + math.log10(f) for v in range(lo, hi) for f in factors if minVal < v + math.log10(f) < maxVal]

        if step > 1:
            return [(float(step), major), (None, [v for v in decades if v not in major] + between(tuple(range(2, 10))))]
        return [(1.0, major), (None, between((2, 5))), (None, between((3, 4, 6, 7, 8, 9)))]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [_label(v) for v in values]


def _label(exponent: float) -> str:
    """'0.01', '2', '5e-05' for 10**exponent; '' for minor ticks other than 1, 2 and 5."""
    k = math.floor(exponent + 1e-9)
    mantissa = 10.0 ** (exponent - k)
    if min(abs(mantissa - m) for m in (1, 2, 5)) > 1e-6 * mantissa + 1e-9:
        return ""
    value = round(mantissa) * 10.0 ** k
    return f"{value:g}" if -3 < k < 4 else f"{round(mantissa)}e{k}"


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
