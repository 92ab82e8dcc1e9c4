"""Everything the views plot over time, fed one frame at a time, in fixed memory."""
from __future__ import annotations

import numpy as np

from visualizer.stream.buffers import RingBuffer, SeriesBuffer
from visualizer.stream.frames import Frame, LayerGradient

LAYER_COLUMNS = ("act_norm", "act_grad_norm", "dead_fraction", "grad_norm", "weight_norm", "update_ratio")


class RunHistory:
    """Per-step metrics, per-layer statistics at capture steps and histogram heat maps.

    ``latest`` is the newest frame; ``gradients`` the newest gradient statistics (frames
    captured while paused carry none, so the last training step's are kept).
    """

    def __init__(self, capacity: int = 4096, hist_rows: int = 512) -> None:
        self.capacity, self.hist_rows = capacity, hist_rows
        self.clear()

    def clear(self) -> None:
        self.metrics = SeriesBuffer(["train_loss", "train_acc", "lr"], self.capacity)
        self.val = SeriesBuffer(["val_loss", "val_acc"], self.capacity)
        self.layers: dict[str, SeriesBuffer] = {}
        self.weight_hist: dict[str, RingBuffer] = {}
        self.grad_hist: dict[str, RingBuffer] = {}
        self.hist_steps: dict[str, RingBuffer] = {}
        self.latest: Frame | None = None
        self.gradients: dict[str, LayerGradient] = {}
        self.frames = 0

    def _layer(self, name: str) -> SeriesBuffer:
        if name not in self.layers:
            self.layers[name] = SeriesBuffer(LAYER_COLUMNS, self.capacity)
        return self.layers[name]

    def truncate(self, step: int) -> None:
        """Forget everything recorded after ``step`` (the run was rolled back to it)."""
        for series in [self.metrics, self.val, *self.layers.values()]:
            series.keep_until(step)
        for name, steps in self.hist_steps.items():
            keep = steps.view() <= step
            for ring in (steps, self.weight_hist.get(name), self.grad_hist.get(name)):
                if ring is not None and not keep.all():
                    rows = ring.view()[keep].copy()
                    ring.clear()
                    ring.extend(rows)

    def ingest(self, frame: Frame) -> None:
        """Fold in a frame; one marked ``info["rolled_back"] = S`` then drops what came after step S
        (including rows it carries from unread older frames)."""
        self.frames += 1
        self.latest = frame
        if len(frame.scalars):
            self.metrics.extend(frame.scalars.steps, frame.scalars.values)
        if frame.val is not None:
            self.val.append(frame.val["step"], val_loss=frame.val["val_loss"], val_acc=frame.val["val_acc"])
        stats: dict[str, dict[str, float]] = {}
        for name, a in frame.activations.items():
            stats[name] = {"act_norm": a.norm, "act_grad_norm": a.grad_norm, "dead_fraction": a.dead_fraction}
        for name, g in frame.gradients.items():
            stats.setdefault(name, {}).update(grad_norm=g.grad_norm, weight_norm=g.weight_norm, update_ratio=g.update_ratio)
            for store, counts in ((self.weight_hist, g.weight_hist), (self.grad_hist, g.grad_hist)):
                if name not in store:
                    store[name] = RingBuffer(self.hist_rows, (counts.shape[0],), np.float32)
                store[name].append(counts)
            if name not in self.hist_steps:
                self.hist_steps[name] = RingBuffer(self.hist_rows, (), np.int64)
            self.hist_steps[name].append(frame.step)
        if frame.gradients:
            self.gradients = dict(frame.gradients)
        for name, values in stats.items():
            self._layer(name).append(frame.step, **values)
        rolled_back = frame.info.get("rolled_back")
        if rolled_back is not None:
            self.truncate(int(rolled_back))
