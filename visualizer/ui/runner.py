"""Builds runs off the UI thread and serves their training loop in a background thread.

Nothing here touches a widget: results and errors travel through the mailbox
("run" and "error" streams), which the main window polls on its timer.
"""
from __future__ import annotations

import threading
import traceback
from typing import Any

from visualizer.stream.mailbox import Mailbox

DEMOS: dict[str, dict[str, Any]] = {
    "cnn-shapes": {"model": "cnn", "data": "shapes", "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}},
    "mlp-spiral": {"model": "mlp", "data": "spiral", "model_options": {"depth": 3, "width": 32},
                   "config": {"optimizer": "adam", "lr": 1e-2, "batch_size": 32}},
    "resnet-shapes": {"model": "resnet", "data": "shapes", "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}},
    # The same optimizer and learning rate, so only the architecture differs.
    "deep-sigmoid-digits": {"model": "mlp", "data": "digits", "model_options": {"depth": 10, "width": 64, "activation": "sigmoid"},
                            "config": {"optimizer": "sgd", "lr": 0.01, "batch_size": 64}},
    "deep-relu-residual-digits": {"model": "mlp", "data": "digits",
                                  "model_options": {"depth": 10, "width": 64, "activation": "relu", "residual": True},
                                  "config": {"optimizer": "sgd", "lr": 0.01, "batch_size": 64}},
}
DEFAULT_DEMO = "cnn-shapes"


class Runner:
    """Owns the current :class:`~visualizer.capture.session.TrainingSession` and its thread."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.session: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._building: threading.Thread | None = None
        self._generation = 0

    def build(self, spec: dict[str, Any]) -> None:
        """Start building a run from a spec dict (see ``RunSpec``) in the background.

        Posts ``{"session", "info", "spec"}`` on the "run" stream when ready, or
        ``{"message"}`` on the "error" stream if the spec is bad.
        """
        self._generation += 1
        generation = self._generation

        def work() -> None:
            try:
                from visualizer.capture.session import TrainingSession
                from visualizer.engine.run import RunSpec, build_trainer

                run_spec = RunSpec.from_dict(spec)
                trainer = build_trainer(run_spec)
                session = TrainingSession(trainer, self.mailbox)
                info = session.run_info()
                info.run_spec = run_spec.to_dict()
                if generation == self._generation:
                    self.mailbox.put("run", {"session": session, "info": info, "spec": run_spec.to_dict()})
            except Exception as exc:  # bad settings must not kill the app
                self.mailbox.put("error", {"step": None, "message": f"Could not start the run: {exc}",
                                           "detail": traceback.format_exc()})

        self._building = threading.Thread(target=work, name="visualizer-build", daemon=True)
        self._building.start()

    def adopt(self, session: Any) -> None:
        """Stop the current loop and serve ``session`` instead."""
        self.stop()
        self.session = session
        self._stop = threading.Event()
        self._thread = threading.Thread(target=session.serve, args=(self._stop,), name="visualizer-train", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the training loop and join its thread; True if it ended."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def join_builder(self, timeout: float | None = None) -> None:
        if self._building is not None:
            self._building.join(timeout)
