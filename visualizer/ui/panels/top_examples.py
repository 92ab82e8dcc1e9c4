"""Top examples: the inputs of the fixed analysis pool that excite the selected channel most,
cropped to the part of the image the channel sees (its receptive field) and enlarged: the
classic way to see what a unit detects. Recomputed on a snapshot of the weights when the
selection changes, and every ~10 s while training runs."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import class_color
from visualizer.ui.widgets.image_strip import to_pixmap
from visualizer.ui.widgets.job_status import JobStatus
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid, line_plot
from visualizer.ui.widgets.attribution_views import TokenRow
from visualizer.ui.widgets.rgb_images import as_rgb, outline_box
from visualizer.ui.widgets.token_text import diverging_key, token_cells
from visualizer.ui.widgets.unit_names import unit_count, unit_word

NAME = "top_examples"
REFRESH_S = 10.0  # while training, recompute at most this often (wall time)
STUCK_S = 60.0  # a request unanswered this long is assumed lost and may be repeated
PAD = 14  # pixels between crops (of a 48-pixel crop): room for the caption under each
COLS = 3
FULL_VIEW_PX = 128  # the full input with its receptive-field box is about this big


class TopExamplesPanel(AnalysisPanel):
    """The 9 analysis-set inputs that drive the selected channel hardest, as receptive-field
    crops with their activation and true class, and where the crop lies in its input."""

    title = "Top examples"
    key = "top_examples"
    analyses = (NAME,)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.clock: Callable[[], float] = time.monotonic  # replaced in tests
        self.caption = caption_label()
        self.status = JobStatus("Run now", "Find the top inputs now, on the current weights")
        self.status.run_clicked.connect(self.run_now)
        self.status.cancel_clicked.connect(lambda: self.cancel(NAME))
        self.auto = QCheckBox("auto-refresh")
        self.auto.setChecked(True)
        self.auto.setToolTip(f"While training runs, recompute every {REFRESH_S:.0f} s on the newest weights")
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(lambda: self.render(self.history.latest))
        self.pool_label = caption_label()
        options = QHBoxLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.addWidget(self.pool_label, 1)
        options.addWidget(self.auto)

        self.grid = ImageGrid(colorbar=False)
        self.grid.setToolTip("Click a crop to see where it lies in its input, below.")
        self.grid.tile_clicked.connect(self._focus_on)
        self.labels: list[pg.TextItem] = []
        self.full_view = QLabel()
        self.full_view.setFixedSize(FULL_VIEW_PX + 4, FULL_VIEW_PX + 4)
        self.full_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.full_caption = caption_label()
        self.full_row = QWidget()
        full_row = QHBoxLayout(self.full_row)
        full_row.setContentsMargins(0, 0, 0, 0)
        full_row.addWidget(self.full_view)
        full_row.addWidget(self.full_caption, 1)
        crops_page = QWidget()
        crops_layout = QVBoxLayout(crops_page)
        crops_layout.setContentsMargins(0, 0, 0, 0)
        crops_layout.addWidget(self.grid, 1)
        crops_layout.addWidget(self.full_row)

        self.bars_plot = line_plot("activation of the unit", "", legend=False)
        self.bars_plot.getPlotItem().invertY(True)
        self.bars_plot.getPlotItem().setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[])
        self.bars_plot.addItem(self.bars)
        self.pages = QStackedWidget()
        self.pages.addWidget(crops_page)
        self.pages.addWidget(self.bars_plot)
        self.sequences = TokenRow()  # token sequences: one coloured line per example
        self.pages.addWidget(self.sequences)
        self.body = Placeholder(self.pages)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.status)
        layout.addLayout(options)
        layout.addWidget(self.body, 1)
        self._reset()
        self.body.show_message("No run yet.")

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self._later.stop()
        self.requested.clear()
        self._target: tuple[str, int] | None = None  # what the last request was for
        self._requested_at = -math.inf
        self._requested_step: int | None = None
        self._busy = False
        self._result: Any = None
        self._result_step: int | None = None
        self._focus = 0

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._reset()
        self.caption.setText("")
        self.status.reset()
        self.body.show_message("Waiting for the first result…")
        pool = len(run.analysis_labels) if run.analysis_labels is not None else 0
        self.pool_label.setText(f"Pool: the first {pool:,} validation samples (never trained on)." if pool else "")

    def wanted(self) -> tuple[str, int] | None:
        """The selected (layer, channel), channel 0 when none is chosen; None (with a message
        shown) when there is nothing to ask for."""
        if self.run is None or not self.run.layers:
            return None
        layer = self.selected_layer()
        channel = 0 if self.selection.channel is None else int(self.selection.channel)
        count = unit_count(self.run, layer)
        if count is not None and channel >= count:
            self.body.show_message(f"Nothing to show because {layer} has {count} {unit_word(self.run, layer)}s "
                                   f"and {channel} is not one of them.")
            return None
        return layer, channel

    # ------------------------------------------------------------------ requests
    def run_now(self) -> None:
        target = self.wanted()
        if target is not None:
            self._request(target)

    def _request(self, target: tuple[str, int]) -> None:
        layer, channel = target
        latest = self.history.latest
        self._target = target
        self._requested_at = self.clock()
        self._requested_step = latest.step if latest is not None else None
        self._busy = True
        self._focus = 0
        self.request(NAME, "top_examples", layer=layer, channel=channel)
        self.status.started(f"scanning the pool for {layer} {unit_word(self.run, layer)} {channel}…")

    def render(self, frame: Frame | None) -> None:
        """Ask for the current target if not yet asked; while training, refresh now and then
        (when the weights have changed, the last answer is in and REFRESH_S have passed)."""
        target = self.wanted()
        if target is None:
            return
        if target != self._target:
            self._request(target)
            return
        if frame is None or not self.auto.isChecked() or frame.step == self._requested_step:
            return
        since = self.clock() - self._requested_at
        if since >= REFRESH_S and (not self._busy or since >= STUCK_S):
            self._request(target)
        elif not self._busy and not self._later.isActive():
            # no new frame may come (training paused): look again when the time is up
            self._later.start(int(1000 * (REFRESH_S - since)) + 50)

    def selection_changed(self, changed: frozenset[str]) -> None:
        if changed & {"layer", "channel"}:
            target = self.wanted()
            if target is not None and target != self._target:
                self._request(target)
            elif target is not None and self._result is not None:
                self._show(self._result, self._result_step)  # the caption's channel hint may change

    # ------------------------------------------------------------------ results
    def analysis_update(self, update: Any) -> None:
        self.status.show_update(update)
        if update.state == "running":
            return
        self._busy = False
        if update.state == "done":
            self._focus = 0
            self._show(update.result, (update.tag or {}).get("step"))
            self.render(self.history.latest)  # trained on meanwhile? schedule the next refresh
        elif update.state == "error":
            self.body.show_message(f"Could not find the top examples: {update.message}")
            self.shown = {"error": update.message}

    def _show(self, result: Any, step: int | None) -> None:
        self._result, self._result_step = result, step
        labels = self._labels(result.indices, getattr(result, "positions", None))
        if getattr(result, "trace", None) is not None and getattr(result, "tokens", None) is not None:
            self._show_sequences(result, labels)
        elif result.crops is None:
            self._show_bars(result, labels)
        else:
            self._show_crops(result, labels)
        self.caption.setText(self._caption(result, step))
        self.body.show_content()
        self.shown.update({"crops": result.crops, "indices": np.asarray(result.indices),
                           "values": np.asarray(result.values), "labels": labels,
                           "layer": result.layer, "channel": int(result.channel)})
        self.shown.pop("error", None)

    def _labels(self, indices: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """The true class of each example; for labels per token, the one at the unit's peak."""
        pool = self.run.analysis_labels if self.run is not None else None
        idx = np.asarray(indices, np.int64)
        if pool is None or not len(idx) or idx.max() >= len(pool):
            return np.full(len(idx), -1, np.int64)
        pool = np.asarray(pool)
        if pool.ndim == 2:
            at = np.asarray(positions, np.int64)[:, 1] if positions is not None else np.full(len(idx), -1)
            return pool[idx, np.clip(at, -pool.shape[1], pool.shape[1] - 1)].astype(np.int64)
        return pool[idx].astype(np.int64)

    def _show_sequences(self, result: Any, labels: np.ndarray) -> None:
        """One line per example: its tokens coloured by the unit's value at each (one shared
        scale), the peak bold and underlined, with the peak value and the true class."""
        self.pages.setCurrentIndex(2)
        symbols = list(self.run.tokens or []) if self.run is not None else []
        trace = np.nan_to_num(np.asarray(result.trace, np.float32))
        scale = float(np.abs(trace).max(initial=0.0)) or 1.0
        per_token = self.run is not None and np.ndim(self.run.analysis_labels) == 2
        rows = []
        for i, (index, value, ids, values) in enumerate(zip(result.indices, result.values, result.tokens, trace)):
            names = [symbols[t] if 0 <= t < len(symbols) else str(t) for t in np.asarray(ids).tolist()]
            peak = int(result.positions[i][1])
            truth = self._class_name(int(labels[i]))
            truth = f"target at the peak: {truth}" if per_token else truth
            rows.append(f"<p>#{int(index)} · <b>{value:.2f}</b> at position {peak} · {truth}<br>"
                        f"{token_cells(names, values / scale, peak)}</p>")
        key = diverging_key(f"−{scale:.3g}", f"+{scale:.3g}")
        self.sequences.label.setText("".join(rows) + f"<p>{key} the unit's value at each token</p>")
        self.shown.update({"trace": trace, "tokens": np.asarray(result.tokens)})

    def _class_name(self, label: int) -> str:
        names = self.run.class_names if self.run is not None else []
        name = names[label] if 0 <= label < len(names) else ("?" if label < 0 else str(label))
        return f"class {name}" if name.isdigit() else name  # "2.41 · class 1", not "2.41 · 1"

    def _show_crops(self, result: Any, labels: np.ndarray) -> None:
        self.pages.setCurrentIndex(0)
        crops = as_rgb(result.crops)
        self.grid.set_tiles(crops, (0.0, 1.0), cols=COLS, pad=PAD)
        n, size = len(crops), crops.shape[1] if len(crops) else 0
        while len(self.labels) < n:
            item = pg.TextItem(color=(20, 20, 20), anchor=(0.5, 0.0))
            font = QFont()
            font.setPointSizeF(8.0)
            item.setFont(font)
            self.grid.plot.addItem(item)
            self.labels.append(item)
        for i, item in enumerate(self.labels):
            item.setVisible(i < n)
            if i < n:
                r, c = divmod(i, COLS)
                item.setText(f"{result.values[i]:.2f} · {self._class_name(int(labels[i]))}")
                item.setPos(c * (size + PAD) + size / 2 - 0.5, r * (size + PAD) + size)
        rows = math.ceil(n / COLS) if n else 1
        self.grid.plot.vb.setRange(xRange=(-0.5, COLS * (size + PAD) - PAD - 0.5),
                                   yRange=(-0.5, rows * (size + PAD) - 0.5), padding=0.01)
        self._show_full(result, labels)

    def _show_full(self, result: Any, labels: np.ndarray) -> None:
        """The focused example's whole input with its receptive field outlined."""
        n = len(result.indices)
        shape = tuple(self.run.input_shape) if self.run is not None else ()
        whole_box = np.array([0, shape[1], 0, shape[2]]) if len(shape) == 3 else None
        if n == 0 or whole_box is None or (np.asarray(result.boxes) == whole_box).all():
            self.full_row.setVisible(False)  # nothing to locate: each crop is its whole input
            self.grid.set_highlight(None)
            self.shown.pop("full", None)
            return
        self.full_row.setVisible(True)
        i = int(np.clip(self._focus, 0, n - 1))
        self.grid.set_highlight(i)
        _, height, width = (int(s) for s in shape)
        top, bottom, left, right = (int(v) for v in result.boxes[i])
        index = int(result.indices[i])
        canvas = as_rgb(np.asarray(result.images[i], np.float32))
        whole = "the whole input"
        scale = max(1, FULL_VIEW_PX // max(height, width))
        shown = outline_box(canvas, (0, height, 0, width), scale, width=1, color=(0.3, 0.3, 0.3))
        shown = outline_box(shown, (top * scale, bottom * scale, left * scale, right * scale), 1, width=2)
        self.full_view.setPixmap(to_pixmap((np.clip(shown, 0, 1) * 255).astype(np.uint8), FULL_VIEW_PX, FULL_VIEW_PX))
        rank = "the top input" if i == 0 else f"input no. {i + 1}"
        self.full_caption.setText(
            f"Where {rank} (#{index} of the pool, true class: {self._class_name(int(labels[i]))}) is seen: "
            f"rows {top}–{bottom - 1}, columns {left}–{right - 1} of the {height}×{width} image, "
            f"outlined in yellow on {whole}. Click another crop to see its place.")
        self.shown.update({"focus": i, "box": np.array([top, bottom, left, right]), "full": shown})

    def _show_bars(self, result: Any, labels: np.ndarray) -> None:
        self.pages.setCurrentIndex(1)
        values = np.asarray(result.values, np.float64)
        ranks = np.arange(1, len(values) + 1, dtype=np.float64)
        brushes = [pg.mkBrush(*class_color(int(l)) if l >= 0 else (150, 150, 150)) for l in labels]
        self.bars.setOpts(x0=np.minimum(values, 0), y=ranks, width=np.abs(values), height=0.7, brushes=brushes,
                          pens=[pg.mkPen(None)] * len(values))
        ticks = [(r, f"#{int(i)} {self._class_name(int(l))}") for r, i, l in zip(ranks, result.indices, labels)]
        self.bars_plot.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.bars_plot.getPlotItem().setLabel("left", "input (# in the pool, true class)")
        lo, hi = min(0.0, float(values.min(initial=0))), max(0.0, float(values.max(initial=0)))
        self.bars_plot.setXRange(lo, hi if hi > lo else lo + 1, padding=0.05)
        self.bars_plot.setYRange(0.4, max(1, len(values)) + 0.6, padding=0)
        self.full_view.clear()

    def _caption(self, result: Any, step: int | None) -> str:
        layer, channel = result.layer, int(result.channel)
        word = unit_word(self.run, layer)
        k = len(result.indices)
        when = "" if step is None else f" · weights of step {step:,}"
        unit = f"<b>{layer}</b> {word} {channel}"
        if self.selection.channel is None:
            unit += " (click a channel in Activations or Filters to choose)"
        dead = ""
        if k and float(np.max(result.values)) <= 0:
            dead = (f"<br><b style='color:#b35900'>This {word} is silent on every pool input</b> (a dead unit): "
                    "the order means nothing.")
        if getattr(result, "trace", None) is not None:
            return (f"What this unit detects: the {k} pool sequences on which {unit} peaks highest{when}. Each token "
                    f"is coloured by the {word}'s value there (red positive, blue negative, one scale for all), "
                    f"the peak bold and underlined." + dead)
        if result.crops is None:
            return (f"What this unit detects: the {k} pool inputs that excite {unit} most, with its value on each "
                    f"(bar colour = true class){when}.<br><i>Receptive-field crops are for conv layers on image "
                    f"inputs; these inputs are not images, so only their numbers in the analysis set are listed.</i>"
                    + dead)
        sizes = np.asarray(result.boxes)
        rf_h = int((sizes[:, 1] - sizes[:, 0]).max()) if len(sizes) else 0
        rf_w = int((sizes[:, 3] - sizes[:, 2]).max()) if len(sizes) else 0
        height, width = (int(s) for s in self.run.input_shape[1:3])
        if (rf_h, rf_w) == (height, width):
            part = f"the whole {height}×{width} input, which a {word} of this layer sees entirely"
        else:
            part = f"the part of the image it sees (its receptive field, {rf_h}×{rf_w} px)"
        return (f"What this unit detects: the {k} pool images that excite {unit} most, cropped to {part} "
                f"and enlarged{when}.<br>Under each crop: the {word}'s strongest activation on that image · "
                f"its true class. Strongest first, left to right, top to bottom." + dead)

    def _focus_on(self, index: int) -> None:
        if self._result is not None and self._result.crops is not None and index < len(self._result.indices):
            self._focus = int(index)
            self._show_full(self._result, self._labels(self._result.indices, self._result.positions))
