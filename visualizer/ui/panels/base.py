"""What every panel is: a widget that renders frames and the shared selection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from visualizer.stream.frames import Frame, RunInfo
from visualizer.stream.history import RunHistory
from visualizer.ui.selection import Selection


@dataclass
class PanelContext:
    """Shared, read-mostly state handed to every panel."""

    selection: Selection
    history: RunHistory


class Panel(QWidget):
    """Base class of the dock panels.

    Subclasses set ``title`` and ``key`` (a stable id, used for the dock's object name
    and saved layouts) and override ``set_run``, ``render`` and, if they hold
    per-selection state, ``selection_changed``. ``render`` is called with the newest
    frame when one arrives and after selection changes; it must update widgets in place
    and record what it displays in ``self.shown`` (name -> array), so tests can compare
    the displayed values with the frame.
    """

    title = "Panel"
    key = "panel"
    max_fps = 30.0  # the window renders this panel at most this often
    heavy = False  # True: costly to render, so the window renders it in an event-loop turn of its own

    def __init__(self, context: PanelContext) -> None:
        super().__init__()
        self.context = context
        self.selection = context.selection
        self.history = context.history
        self.run: RunInfo | None = None
        self.shown: dict[str, Any] = {}
        self.setObjectName(f"panel-{self.key}")

    # -- called by the main window -------------------------------------------------
    def set_run(self, run: RunInfo) -> None:
        """A new run started (other layers, classes, inputs): rebuild what depends on it."""
        self.run = run
        self.shown = {}

    def render(self, frame: Frame | None) -> None:
        """Show ``frame`` (the newest) for the current selection."""

    def selection_changed(self, changed: frozenset[str]) -> None:
        """Default: re-render the newest frame for the new selection."""
        self.render(self.history.latest)

    def settle(self) -> None:
        """After a render: let the window paint all of this panel's views once each, in one pass.

        Two things stand in the way. pyqtgraph applies view-range changes lazily, inside the paint,
        which then asks for another paint: they are applied here, until nothing is pending (a
        view's new range moves the views linked to it, and moved items can ask for a new auto
        range). And a QGraphicsScene that nobody listens to dispatches the window's paint as soon
        as it has processed its own changes, so N changed views cost N paint passes of the whole
        window: with a listener on ``changed`` it posts its update like any widget does."""
        import pyqtgraph as pg

        views = [v for v in self.findChildren(pg.GraphicsView) if v.isVisible()]
        for view in views:
            scene = view.scene()
            if not scene.property("batched"):
                scene.changed.connect(_ignore)
                scene.setProperty("batched", True)
        boxes = [b for v in views for b in v.scene().items() if isinstance(b, pg.ViewBox)]
        for _ in range(6):
            for view in views:
                view.scene().prepareForPaint()
            if not any(getattr(b, "_autoRangeNeedsUpdate", False) or getattr(b, "_matrixNeedsUpdate", False) for b in boxes):
                break

    # -- helpers -------------------------------------------------------------------
    def hookless(self) -> bool:
        """True for a model whose layers cannot be hooked (a TorchScript file: only its output is seen)."""
        return self.run is not None and any(l.kind == "ScriptOutput" for l in self.run.layers)

    def selected_layer(self, default_first: bool = True) -> str | None:
        layer = self.selection.layer
        if layer is None and default_first and self.run and self.run.layers:
            return self.run.layers[0].name
        return layer

    def sample_index(self) -> int:
        sample = self.selection.sample or 0
        if self.run is None or not len(self.run.probe_labels):
            return 0
        return int(np.clip(sample, 0, len(self.run.probe_labels) - 1))


def _ignore(*_: object) -> None:
    """A listener that does nothing (see ``Panel.settle``)."""


class AnalysisPanel(Panel):
    """A panel that shows the result of an analysis run on a snapshot of the weights.

    It asks for an analysis with :meth:`request` (the window passes it to the training
    session, which runs it in its own thread between steps) and receives every update
    (progress, result, cancellation, error) for the names in ``analyses`` through
    :meth:`analysis_update`. Updates of a job older than the last request are dropped here.
    """

    analyses: tuple[str, ...] = ()
    analysis_requested = Signal(str, str, dict)  # name, kind, params
    analysis_cancelled = Signal(str)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.requested: dict[str, dict[str, Any]] = {}  # name -> the tag of the last request

    def request(self, name: str, kind: str, **params: Any) -> None:
        self.requested[name] = {"kind": kind, **params}
        self.analysis_requested.emit(name, kind, params)

    def request_with_status(self, name: str, kind: str, status: str, **params: Any) -> None:
        """Request an analysis of the newest weights and show ``status`` in the panel's
        ``controls`` (an ``AnalysisControls``) until it answers."""
        latest = self.history.latest
        self.request(name, kind, **params)
        self.controls.started(None if latest is None else latest.step, status)

    def cancel(self, name: str) -> None:
        self.analysis_cancelled.emit(name)

    def receive(self, update: Any) -> None:
        """Called by the window; passes on updates that answer the latest request."""
        wanted = self.requested.get(update.name)
        tag = update.tag or {}
        if wanted is None or any(tag.get(k) != v for k, v in wanted.items()):
            return  # an answer to an older request
        self.analysis_update(update)

    def analysis_update(self, update: Any) -> None:
        """Show a ``JobUpdate``: ``state`` running/done/cancelled/error, ``fraction``, ``result``."""
