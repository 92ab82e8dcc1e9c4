"""Starts runs and owns the one that is shown; nothing here touches a widget.

A run built from a spec trains in a worker process (:class:`RemoteSession`), so the
training loop and the UI never compete for the interpreter lock. A live model handed in
from a script is served in a background thread of this process instead
(:meth:`Runner.serve_here`). Either way, results and errors travel through the mailbox
("run", "train", "status", "error", "notice" streams), which the window polls.
"""
from __future__ import annotations

import threading
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
    # A learning rate far too high for tanh: every hidden layer saturates at +-1 within ten steps and the
    # saturated-units alarm fires; lower lr to 0.05 in Run setup and the same net trains (0.95 in 100 steps).
    "saturated-tanh-digits": {"model": "mlp", "data": "digits", "model_options": {"depth": 4, "width": 64, "activation": "tanh"},
                              "config": {"optimizer": "sgd", "lr": 1.0, "batch_size": 64}},
    # Sequence models: attention maps (Transformer, ViT) and recurrent state (LSTM).
    "transformer-reverse": {"model": "transformer", "data": "reverse", "config": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}},
    "transformer-text": {"model": "transformer", "data": "text", "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}},
    "lstm-brackets": {"model": "lstm", "data": "brackets", "config": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64}},
    # running parity of 16 bits: the hidden state learns a flip-flop (most validation strings are unseen)
    "lstm-parity": {"model": "lstm", "data": "parity", "config": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64}},
    "vit-shapes": {"model": "vit", "data": "shapes", "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}},
}
DEFAULT_DEMO = "cnn-shapes"


class _ThreadSession:
    """A TrainingSession served by a thread of this process, with RemoteSession's surface."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._stop = threading.Event()
        self._thread = threading.Thread(target=session.serve, args=(self._stop,), name="visualizer-train", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    @property
    def busy(self) -> bool:
        return self.session.busy

    @property
    def step(self) -> int:
        return self.session.trainer.step_count

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)


class Runner:
    """Builds runs and keeps exactly one of them current."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.session: Any = None
        self._starting: list[Any] = []

    def build(self, spec: dict[str, Any]) -> None:
        """Start a worker process for ``spec``; it posts "run" when ready or "error" if the spec is bad."""
        from visualizer.capture.remote import RemoteSession

        self._starting.append(RemoteSession(spec, self.mailbox))

    def serve_here(self, session: Any) -> None:
        """Serve an in-process TrainingSession (a live model from a script) and make it current."""
        self.adopt(_ThreadSession(session))

    def adopt(self, session: Any) -> None:
        """Make ``session`` current; every other session is stopped."""
        others = [s for s in [self.session, *self._starting] if s is not None and s is not session]
        self.session, self._starting = session, []
        for s in others:
            s.close()

    def stop(self) -> None:
        """Stop every session and join its worker."""
        for s in [self.session, *self._starting]:
            if s is not None:
                s.close()
        self.session, self._starting = None, []

    def discard_failed(self) -> None:
        """Forget starting sessions whose worker has ended (a bad spec)."""
        self._starting = [s for s in self._starting if s.alive]
