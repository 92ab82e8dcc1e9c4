"""Samples: the fixed probe batch and what the model currently predicts for each sample.

Images are shown as thumbnails (small ones enlarged with nearest neighbour so their
pixels stay sharp), each captioned with the true label and the prediction, green when
right and red when wrong. 2-D data is shown as the probe points over the training set,
with a list of coordinates and predictions. Clicking a sample selects it everywhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext
from visualizer.ui.widgets.colormaps import class_color
from visualizer.ui.widgets.plots import HIGHLIGHT

RIGHT, WRONG, UNKNOWN = QColor(0, 128, 0), QColor(200, 20, 20), QColor(90, 90, 90)
POINT_RIGHT = QColor(30, 30, 30)  # outline of a rightly predicted probe point (a red one is wrong)
SELECTED = QColor(255, 221, 120)  # a pale version of the shared highlight colour
LIST_TIPS = {
    "#": "Index in the probe batch",
    "input": "The input sequence, as symbols",
    "x₁": "First input coordinate",
    "x₂": "Second input coordinate",
    "true": "The sample's real class (its colour in the scatter plot)",
    "predicted": "The model's most likely class and its probability (green ✓ right, red ✗ wrong)",
}
THUMB_RANGE = (40, 128)  # thumbnail edge in pixels: chosen to fit the panel within this range


def image_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) in [0, 1] -> (H, W, 3) uint8 (grey repeated, extra channels dropped)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        img = img[:3] if img.shape[0] >= 3 else img[:1]
        img = np.repeat(img, 3, 0) if img.shape[0] == 1 else img
        img = np.transpose(img, (1, 2, 0))
    else:
        img = np.repeat(img[..., None], 3, -1)
    return np.ascontiguousarray((np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def rgb_qimage(rgb: np.ndarray) -> QImage:
    """(h, w, 3) uint8 -> QImage (the data is copied)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail(image: QImage, size: int) -> QPixmap:
    """``image`` fitted into size x size: small images are enlarged with nearest neighbour
    (by a whole factor when at least doubled, so every pixel stays square and sharp),
    large ones reduced smoothly."""
    edge = max(image.width(), image.height(), 1)
    if size >= 2 * edge:
        size = size // edge * edge
    mode = Qt.TransformationMode.FastTransformation if size >= edge else Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode))


def grid_cells(n: int, width: int, height: int, line_h: int, caption_w: int,
               thumb_range: tuple[int, int] = THUMB_RANGE) -> tuple[int, int, int]:
    """(thumb edge, cell width, cell height) for n captioned thumbnails in width x height.

    Prefers the largest thumbnails with which all n fit without scrolling; when none
    does, thumbnails of the smallest size in columns wide enough for the captions.
    """
    lo, hi = thumb_range
    text_h = 2 * line_h + 8
    best: tuple[int, int, int] | None = None
    for cols in range(1, max(1, n) + 1):
        cell_w = width // cols
        rows = -(-max(1, n) // cols)
        thumb = min(hi, cell_w - 8, height // rows - text_h)
        if cell_w - 8 < lo:
            break
        if thumb >= lo and (best is None or thumb > best[0]):
            best = (thumb, cell_w, thumb + text_h)
    if best is not None:
        return best
    cols = max(1, width // max(lo + 8, min(caption_w, width)))
    cell_w = max(lo + 8, width // cols)
    thumb = max(lo, min(hi, cell_w - 8))
    return thumb, cell_w, thumb + text_h


class ThumbnailGrid(QListView):
    """Captioned thumbnails that flow to fill the view; resizing re-fits them."""

    def __init__(self, on_resize: Any) -> None:
        super().__init__()
        self._on_resize = on_resize

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._on_resize()


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a thumbnail with its true label and its prediction (green ✓ right, red ✗ wrong);
    the selected sample gets a thick highlight frame."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell = QSize(72, 100)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return self.cell

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        model = index.model()
        if not isinstance(model, ThumbnailModel) or index.row() >= model.rowCount():
            return
        i, s = index.row(), model.state
        rect = option.rect.adjusted(1, 1, -1, -1)
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, SELECTED)
            painter.setPen(QPen(HIGHLIGHT, 3))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        pixmap = model.pixmaps[i] if i < len(model.pixmaps) else None
        top = rect.top() + 4
        if pixmap is not None:
            painter.drawPixmap(rect.left() + (rect.width() - pixmap.width()) // 2, top, pixmap)
            top += model.thumb
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        text_w = rect.width() - 6
        left = rect.left() + 3
        painter.setPen(QColor(30, 30, 30))
        true_name = metrics.elidedText(s.true_name(i), Qt.TextElideMode.ElideRight, text_w)
        painter.drawText(QRect(left, top + 2, text_w, line_h), int(Qt.AlignmentFlag.AlignCenter), true_name)
        mark, name, conf = s.prediction_parts(i)
        room = text_w - metrics.horizontalAdvance(f"{mark}  {conf}")
        name = metrics.elidedText(name, Qt.TextElideMode.ElideRight, max(metrics.horizontalAdvance("x…"), room))
        text = " ".join(part for part in (mark, name, conf) if part)
        painter.setPen(s.color(i))
        painter.drawText(QRect(left, top + 2 + line_h, text_w, line_h), int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()


class ProbePredictions:
    """Labels, probabilities and predictions of the probe batch, with caption helpers."""

    def __init__(self, labels: np.ndarray, class_names: list[str], inputs: np.ndarray | None = None,
                 tokens: list[str] | None = None) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.per_token = self.labels.ndim == 2  # sequence tasks: one class per position
        self.inputs = None if inputs is None or tokens is None else [
            " ".join(tokens[t] if 0 <= t < len(tokens) else "?" for t in np.asarray(x).astype(np.int64).ravel())
            for x in inputs]
        self.probs: np.ndarray | None = None
        self.predicted = np.full(self.labels.shape, -1, np.int64)

    def update(self, probs: np.ndarray | None) -> None:
        ok = (probs is not None and probs.ndim == self.labels.ndim + 1 and probs.shape[:-1] == self.labels.shape
              and probs.shape[-1] > 0)
        self.probs = probs if ok else None
        self.predicted = np.argmax(probs, -1).astype(np.int64) if ok else np.full(self.labels.shape, -1, np.int64)

    def _symbols(self, ks: np.ndarray) -> str:
        return " ".join(self.name(int(k)) for k in ks)

    def true_name(self, i: int) -> str:
        """The true class, or for per-token tasks the true output sequence."""
        return self._symbols(self.labels[i]) if self.per_token else self.name(int(self.labels[i]))

    def right_count(self) -> int:
        """Probe samples predicted right (every token right, for per-token tasks)."""
        return sum(self.correct(i) for i in range(len(self.labels)))

    def name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def known(self, i: int) -> bool:
        return self.probs is not None and bool(np.all(self.predicted[i] >= 0))

    def correct(self, i: int) -> bool:
        return self.known(i) and bool(np.array_equal(self.predicted[i], self.labels[i]))

    def prediction_parts(self, i: int) -> tuple[str, str, str]:
        """("✓" or "✗", predicted class, "87%"), or ("", "–", "") before the first frame."""
        if not self.known(i):
            return "", "–", ""
        mark = "✓" if self.correct(i) else "✗"
        if self.per_token:  # the predicted sequence and its mean token confidence
            return mark, self._symbols(self.predicted[i]), f"{100 * float(self.probs[i].max(-1).mean()):.0f}%"
        k = int(self.predicted[i])
        return mark, self.name(k), f"{100 * float(self.probs[i, k]):.0f}%"

    def marked_prediction(self, i: int) -> str:
        """"✗ ring 87%" (the mark says right or wrong without relying on colour)."""
        return " ".join(part for part in self.prediction_parts(i) if part)

    def prediction(self, i: int) -> str:
        """"ring 87%" or "–" before the first frame."""
        if not self.known(i):
            return "–"
        _, name, conf = self.prediction_parts(i)
        return f"{name} {conf}"

    def color(self, i: int) -> QColor:
        return UNKNOWN if not self.known(i) else RIGHT if self.correct(i) else WRONG

    def describe(self, i: int) -> str:
        """"sample 3 (true: star, predicted: ring 87%)"."""
        head = f"sample {i}" if self.inputs is None else f"sample {i}: {self.inputs[i]}"
        return f"{head} (true: {self.true_name(i)}, predicted: {self.prediction(i)})"

    def tooltip(self, i: int) -> str:
        text = self.describe(i)
        if self.known(i) and not self.per_token:
            top = np.argsort(self.probs[i])[::-1][:3]
            text += "\nmost likely: " + ", ".join(f"{self.name(int(k))} {100 * float(self.probs[i, k]):.1f}%" for k in top)
        return text + "\nClick to focus every panel on this sample."


class ThumbnailModel(QAbstractListModel):
    """One item per probe image: its thumbnail and a caption coloured by correctness."""

    def __init__(self, state: ProbePredictions) -> None:
        super().__init__()
        self.state = state
        self.images: list[QImage] = []
        self.pixmaps: list[QPixmap] = []
        self.thumb = 0

    def set_images(self, state: ProbePredictions, images: list[QImage]) -> None:
        self.beginResetModel()
        self.state, self.images, self.pixmaps, self.thumb = state, images, [], 0
        self.endResetModel()

    def set_thumb(self, size: int) -> None:
        """Re-scale the thumbnails to ``size`` pixels (only when the size changes)."""
        if size != self.thumb and self.images:
            self.thumb = size
            self.pixmaps = [thumbnail(image, size) for image in self.images]
            self.refresh()

    def refresh(self) -> None:
        if self.images:
            self.dataChanged.emit(self.index(0), self.index(len(self.images) - 1))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.images)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.images):
            return None
        i, s = index.row(), self.state
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmaps[i] if i < len(self.pixmaps) else None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{s.true_name(i)}\n{s.marked_prediction(i)}"
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(s.color(i))
        if role == Qt.ItemDataRole.ToolTipRole:
            return s.tooltip(i)
        return None


class ProbeListModel(QAbstractTableModel):
    """Probe samples as rows: index, coordinates (2-D data), true and predicted class."""

    def __init__(self, state: ProbePredictions) -> None:
        super().__init__()
        self.state = state
        self.coords: np.ndarray | None = None
        self.headers = ["#", "true", "predicted"]

    def set_samples(self, state: ProbePredictions, coords: np.ndarray | None) -> None:
        self.beginResetModel()
        self.state, self.coords = state, coords
        self.headers = ["#", "x₁", "x₂", "true", "predicted"] if coords is not None else ["#", "true", "predicted"]
        if state.inputs is not None:
            self.headers = ["#", "input", "true", "predicted"]
        self.endResetModel()

    def refresh(self) -> None:
        n = self.rowCount()
        if n:
            self.dataChanged.emit(self.index(0, 0), self.index(n - 1, len(self.headers) - 1))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else int(self.state.labels.shape[0])

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.headers):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.headers[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return LIST_TIPS[self.headers[section]]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        i, s, col = index.row(), self.state, self.headers[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == "#":
                return str(i)
            if col in ("x₁", "x₂") and self.coords is not None:
                return f"{float(self.coords[i, 0 if col == 'x₁' else 1]):+.2f}"
            if col == "input" and s.inputs is not None:
                return s.inputs[i]
            if col == "true":
                return s.true_name(i)
            if col == "predicted":
                return s.marked_prediction(i)
        if role == Qt.ItemDataRole.ForegroundRole and col == "predicted":
            return QBrush(s.color(i))
        if role == Qt.ItemDataRole.DecorationRole and col == "true" and not s.per_token:
            return QColor(*class_color(int(s.labels[i])))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in ("#", "x₁", "x₂"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return s.tooltip(i)
        return None


def scatter_legend(class_names: list[str]) -> str:
    """Rich text explaining the scatter: class colours, point sizes and outlines."""
    def dot(color: tuple[int, int, int] | QColor, symbol: str = "●") -> str:
        c = QColor(*color) if isinstance(color, tuple) else color
        return f'<span style="color:{c.name()}; font-size:large">{symbol}</span>'

    classes = " ".join(f"{dot(class_color(k))}&nbsp;{name}" for k, name in enumerate(class_names))
    return (f"<small>{classes}<br>small, faded: training points · large: probe samples, "
            f"{dot(POINT_RIGHT, '○')}&nbsp;predicted right, {dot(WRONG, '○')}&nbsp;wrong, "
            f"{dot(HIGHLIGHT, '◯')}&nbsp;selected</small>")


def _highlight_palette(view: QAbstractItemView) -> None:
    palette = view.palette()
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        palette.setColor(group, QPalette.ColorRole.Highlight, SELECTED)
        palette.setColor(group, QPalette.ColorRole.HighlightedText, QColor(0, 0, 0))
    view.setPalette(palette)


class SamplesPanel(Panel):
    """Probe thumbnails (or 2-D probe points) with true and predicted labels; a click selects a sample."""

    title = "Samples"
    key = "samples"

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.state = ProbePredictions(np.zeros(0, np.int64), [])
        self.header = QLabel("No run yet.")
        self.header.setWordWrap(True)
        bold = QFont(self.header.font())
        bold.setBold(True)
        self.header.setFont(bold)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)

        # images: a flowing grid of captioned thumbnails
        self.thumbs = ThumbnailModel(self.state)
        self.grid = ThumbnailGrid(self._fit_grid)
        self.grid.setModel(self.thumbs)
        self.delegate = ThumbnailDelegate(self.grid)
        self.grid.setItemDelegate(self.delegate)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setSpacing(0)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        small = QFont(self.grid.font())
        small.setPointSizeF(max(7.5, small.pointSizeF() * 0.9))
        self.grid.setFont(small)
        self.grid.selectionModel().currentChanged.connect(self._item_changed)
        self.grid.clicked.connect(lambda index: self._item_changed(index, QModelIndex()))

        # 2-D points: probe points over the training set, and a list
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.ci.setContentsMargins(2, 2, 2, 2)
        item = self.plot_item = self.plot.addPlot(row=0, col=0)
        item.setLabel("bottom", "x₁ (first input coordinate)")
        item.setLabel("left", "x₂ (second input coordinate)")
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setAspectLocked(True)
        item.showGrid(x=True, y=True, alpha=0.2)
        self.legend = QLabel("")  # below the plot, never over the points; wraps in a narrow dock
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.background = pg.ScatterPlotItem(size=4, pen=None)
        self.points = pg.ScatterPlotItem(size=11, hoverable=True, tip=None)
        self.ring = pg.ScatterPlotItem(size=22, brush=None, pen=pg.mkPen(HIGHLIGHT, width=3))
        for it in (self.background, self.points, self.ring):
            item.addItem(it)
        self.points.sigClicked.connect(self._point_clicked)
        self.list_model = ProbeListModel(self.state)
        self.table = QTableView()
        self.table.setModel(self.list_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setHighlightSections(False)
        _highlight_palette(self.table)
        self.table.selectionModel().currentRowChanged.connect(self._item_changed)
        self.table.clicked.connect(lambda index: self._item_changed(index, QModelIndex()))
        self.split = QSplitter(Qt.Orientation.Vertical)
        scatter = QWidget()
        scatter_layout = QVBoxLayout(scatter)
        scatter_layout.setContentsMargins(0, 0, 0, 0)
        scatter_layout.setSpacing(0)
        scatter_layout.addWidget(self.plot, 1)
        scatter_layout.addWidget(self.legend)
        self.scatter = scatter
        self.split.addWidget(scatter)
        self.split.addWidget(self.table)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)

        self.pages = QStackedWidget()
        self.pages.addWidget(self.grid)
        self.pages.addWidget(self.split)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.header)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.caption)
        self._syncing = False
        self._pens_for: np.ndarray | None = None

    # -- run and frames ----------------------------------------------------------
    def is_images(self) -> bool:
        """Image-like probe inputs: (P, C, H, W) or (P, H, W)."""
        return self.run is not None and self.run.probe_inputs.ndim in (3, 4) and self.run.data_kind != "sequence"

    def is_plane(self) -> bool:
        run = self.run
        return (run is not None and run.data_kind != "sequence"
                and run.probe_inputs.ndim == 2 and run.probe_inputs.shape[1] == 2)

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self.state = ProbePredictions(run.probe_labels, run.class_names, run.probe_inputs, run.tokens)
        self._pens_for = None
        if self.is_images():
            self.thumbs.set_images(self.state, [rgb_qimage(image_rgb(image)) for image in run.probe_inputs])
            self._fit_grid()
            self.list_model.set_samples(self.state, None)
            self.pages.setCurrentWidget(self.grid)
        else:
            self.thumbs.set_images(self.state, [])
            coords = run.probe_inputs if self.is_plane() else None
            self.list_model.set_samples(self.state, coords)
            self._set_points(run, coords)
            self.scatter.setVisible(coords is not None)
            self.pages.setCurrentWidget(self.split)
            self._size_list_columns()
        self.header.setText(f"{len(run.probe_labels)} probe samples (validation set). No predictions yet: press Play or Step.")
        self._sync_highlight()

    def _size_list_columns(self) -> None:
        """Widths from the longest texts (not from the cells, which change every frame)."""
        metrics = self.table.fontMetrics()
        header = self.table.horizontalHeader()
        longest = max(self.state.class_names, key=len, default="0")
        widths = {"#": metrics.horizontalAdvance("999") + 10, "x₁": metrics.horizontalAdvance("+0.00") + 12,
                  "true": metrics.horizontalAdvance(longest) + 34}
        widths["x₂"] = widths["x₁"]
        if self.state.inputs is not None:  # token sequences: as wide as the longest one
            widths["input"] = max(metrics.horizontalAdvance(t) for t in self.state.inputs) + 12 if self.state.inputs else 40
            if self.state.per_token:
                widths["true"] = max(metrics.horizontalAdvance(self.state.true_name(i))
                                     for i in range(len(self.state.labels))) + 12
        for col, name in enumerate(self.list_model.headers[:-1]):
            header.resizeSection(col, widths[name])
        header.setSectionResizeMode(len(self.list_model.headers) - 1, QHeaderView.ResizeMode.Stretch)

    def _fit_grid(self) -> None:
        """Size the thumbnails so the whole probe batch fits the view when it can."""
        n = self.thumbs.rowCount()
        if n == 0:
            return
        frame = 2 * self.grid.frameWidth()
        width, height = self.grid.width() - frame - 2, self.grid.height() - frame - 2
        metrics = self.grid.fontMetrics()
        longest = max((self.state.name(k) for k in range(len(self.state.class_names))), key=len, default="0")
        caption_w = metrics.horizontalAdvance(f"✗ {longest} 100%") + 8
        thumb, cell_w, cell_h = grid_cells(n, width, height, metrics.height(), caption_w)
        fits = (width // cell_w) * (height // cell_h) >= n
        if not fits:  # it will scroll: leave room for the scroll bar
            width -= self.grid.verticalScrollBar().sizeHint().width()
            thumb, cell_w, cell_h = grid_cells(n, width, height, metrics.height(), caption_w)
        # Decided here, not by the view: a scroll bar shown during an earlier layout would
        # otherwise keep the view one column short and so keep itself needed.
        self.grid.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if fits
                                             else Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.thumbs.set_thumb(thumb)
        if self.delegate.cell != QSize(cell_w, cell_h):
            self.delegate.cell = QSize(cell_w, cell_h)
            self.grid.setGridSize(self.delegate.cell)

    def _set_points(self, run: RunInfo, coords: np.ndarray | None) -> None:
        self.legend.setText("")
        if coords is None:
            self.background.clear()
            self.points.clear()
            self.ring.clear()
            return
        if run.points is not None and len(run.points):
            labels = run.point_labels if run.point_labels is not None else np.zeros(len(run.points), np.int64)
            brushes = [pg.mkBrush(*class_color(int(k)), 70) for k in labels]
            self.background.setData(pos=np.asarray(run.points, np.float64), brush=brushes)
        else:
            self.background.clear()
        brushes = [pg.mkBrush(*class_color(int(k))) for k in run.probe_labels]
        self.points.setData(pos=np.asarray(coords, np.float64), brush=brushes, pen=pg.mkPen(UNKNOWN, width=1.5),
                            data=np.arange(len(coords)))
        self.legend.setText(scatter_legend(run.class_names))
        self.plot_item.autoRange(padding=0.05)

    def render(self, frame: Frame | None) -> None:
        run = self.run
        if run is None:
            return
        probe = frame.probe if frame is not None else None
        probs = None if probe is None else np.asarray(probe.probs)
        self.state.update(probs)
        n = len(self.state.labels)
        if self.state.probs is None:
            reason = "No predictions yet: press Play or Step." if frame is None else "This frame carries no predictions."
            self.header.setText(f"{n} probe samples (validation set). {reason}")
        elif self.run is not None and self.run.labels_from_model:
            self.header.setText(f"{n} inputs without true labels: each is labelled by the model's own prediction "
                                f"when it was opened (a ✓ means the prediction has not changed), step {frame.step:,}")
        else:
            right = self.state.right_count()
            self.header.setText(f"{right} of {n} probe samples right ({100 * right / max(1, n):.0f}%), step {frame.step:,}")
        self.thumbs.refresh()
        self.list_model.refresh()
        self._update_pens()
        self._update_caption()
        self.shown = {
            "probs": self.state.probs if self.state.probs is not None else np.zeros((n, 0), np.float32),
            "predicted": self.state.predicted.copy(),
            "labels": self.state.labels.copy(),
            "selected": np.array(self.sample_index()),
        }

    def _update_pens(self) -> None:
        if not self.is_plane() or not len(self.state.labels):
            return
        key = np.where(self.state.predicted < 0, -1, (self.state.predicted == self.state.labels).astype(np.int64))
        if self._pens_for is not None and np.array_equal(key, self._pens_for):
            return  # points keep their outlines until a prediction flips
        self._pens_for = key
        pens = {-1: pg.mkPen(UNKNOWN, width=1.5), 0: pg.mkPen(WRONG, width=3), 1: pg.mkPen(POINT_RIGHT, width=1.5)}
        self.points.setPen([pens[int(k)] for k in key])

    def _update_caption(self) -> None:
        if not len(self.state.labels):
            self.caption.setText("No probe samples in this run.")
            return
        i = self.sample_index()
        extra = ""
        if self.is_plane():
            x, y = self.run.probe_inputs[i]
            extra = f" at ({x:+.2f}, {y:+.2f})"
        self.caption.setText(f"Selected: {self.state.describe(i)}{extra}")

    # -- selection ---------------------------------------------------------------
    def selection_changed(self, changed: frozenset[str]) -> None:
        if "sample" in changed:
            self._sync_highlight()
            self._update_caption()
            self.shown["selected"] = np.array(self.sample_index())

    def _sync_highlight(self) -> None:
        n = len(self.state.labels)
        i = self.sample_index()
        self._syncing = True
        try:
            if self.pages.currentWidget() is self.grid:
                view, index = self.grid, self.thumbs.index(i) if n else QModelIndex()
                flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
            else:
                view, index = self.table, self.list_model.index(i, 0) if n else QModelIndex()
                flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            if index.isValid():
                view.selectionModel().setCurrentIndex(index, flags)
                view.scrollTo(index)
            if self.is_plane() and n:
                self.ring.setData(pos=np.asarray(self.run.probe_inputs[i : i + 1], np.float64))
        finally:
            self._syncing = False

    def _item_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not self._syncing and current.isValid():
            self.select(current.row())

    def _point_clicked(self, _item: Any, points: Any, _event: Any = None) -> None:
        if len(points):
            self.select(int(points[0].index()))

    def select(self, sample: int) -> None:
        """Make probe sample ``sample`` the selected one (for every panel)."""
        if 0 <= sample < len(self.state.labels):
            self.selection.set(sample=sample)
