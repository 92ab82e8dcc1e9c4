"""The two loops the benchmarks drive: the bare PyTorch loop every throughput ratio divides
by, and the app's loop (a :class:`TrainingSession` armed as the display timer arms it)."""
from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


class BareLoop:
    """forward, cross-entropy, zero_grad, backward, optimizer.step, and nothing else.

    Built from a trainer: a copy of its model (same architecture and initial weights), the
    same data tensors on the same device, the same batch size, and a fresh optimizer of the
    same class with the same options (fused Adam where the trainer uses it). Subnormal floats
    flushed to zero in this thread, as in the session's (see ``flush_denormals``).
    """

    def __init__(self, trainer: Any) -> None:
        from visualizer.engine.devices import flush_denormals

        flush_denormals()
        self.device: torch.device = trainer.device
        self.model = copy.deepcopy(trainer.model).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = same_optimizer(trainer.optimizer, params)
        self.x, self.y = trainer.x_train, trainer.y_train
        self.batch = min(trainer.config.batch_size, self.x.shape[0])
        self._order = torch.randperm(self.x.shape[0], device=self.device)
        self._pos = 0

    def step(self) -> None:
        n = self.x.shape[0]
        if self._pos + self.batch > n:
            self._order, self._pos = torch.randperm(n, device=self.device), 0
        idx = self._order[self._pos : self._pos + self.batch]
        self._pos += self.batch
        logits, y = self.model(self.x[idx]), self.y[idx]
        if y.dim() > 1:  # per-token labels (sequence tasks): one class per position
            logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def same_optimizer(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class over ``params`` with its current options."""
    cls = type(optimizer)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    options = {k: v for k, v in optimizer.param_groups[0].items() if k in accepted}
    return cls(params, **options)


class CapturedLoop:
    """The app's loop without the window: arm before every step (the display timer arms at
    its own rate; the session's cadence decides) and take each frame from the mailbox as it
    comes, handing it to ``consume``. Counts the frames taken. ``clock``: the session's
    cadence clock (see :class:`~visualizer.capture.session.TrainingSession`)."""

    def __init__(self, trainer: Any, consume: Callable[[Any], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from visualizer.capture.session import TrainingSession

        self.session = TrainingSession(trainer, clock=clock)  # default CaptureSettings
        self.consume = consume
        self.frames = 0

    def step(self) -> None:
        self.session.arm()
        if self.session.step() is None:  # the window takes frames in its own thread: only look when one came
            return
        frame = self.session.mailbox.take("train")
        if frame is not None:
            self.frames += 1
            if self.consume is not None:
                self.consume(frame)
