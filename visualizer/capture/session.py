"""The one training loop: a trainer, its probes and a mailbox, with play/pause/step controls.

The UI's worker thread, the headless ``train`` command and scripts all drive a
:class:`TrainingSession`. Control calls are thread-safe: they queue a message that the
loop applies between steps. Capture happens only on armed steps, at most every
``every_k_steps`` steps, at most ``max_rate_hz`` times a second, and only as often as
keeps capture below ``budget`` of the time (a capture costs its probes' and publishing
time, not the training step it rides on, plus the slowdown it leaves behind: the steps
right after it run on caches it made cold); other steps attach no hook and never
synchronise with the host.
"""
from __future__ import annotations

import math
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from visualizer.capture.alarms import RELU_KINDS, AlarmTracker
from visualizer.capture.attention import attention_modules, recurrent_modules, sequence_captures
from visualizer.capture.divergence import Divergence, locate_nonfinite, parameters_finite
from visualizer.capture.layers import LayerInfo, discover_layers, first_tensor, parametrised
from visualizer.capture.probes import (ActivationProbe, AliveUnits, GradientProbe, PlaneProbe, filter_images, parameter_filters,
                                      preserved_state, weight_movement)
from visualizer.capture.transfer import to_host
from visualizer.engine.devices import flush_denormals
from visualizer.engine.snapshots import SnapshotKeeper
from visualizer.engine.trainer import Trainer
from visualizer.stream.frames import Frame, LayerActivation, LayerGradient, ProbeOutputs, RunInfo, ScalarChunk
from visualizer.stream.mailbox import Mailbox


@dataclass
class CaptureSettings:
    """How often and how much to capture (see the module docstring)."""

    probe_size: int = 16
    every_k_steps: int = 1
    max_rate_hz: float = 30.0
    # share of the time for captures (with what they leave behind) and validation (a third of it)
    budget: float = 0.02
    max_capture_gap_s: float = 4.0  # a frame at least this often while training, whatever a capture costs
    val_interval_s: float = 1.0  # at most this often (and less often when validation is slow)
    val_samples: int = 512  # live validation on a fixed subset; the full split on demand
    max_channels: int = 32
    map_size: int = 16
    max_units: int = 256
    threads: int | None = None  # CPU threads for torch in the loop's thread; None: all but one core
    snapshot_every: int = 200  # steps between snapshots a diverged run is rolled back to, at least
    snapshot_interval_s: float = 0.5  # and at least this long apart on the session's clock (see SnapshotKeeper)
    rollback_margin: int = 50  # roll back at least this many steps before a divergence when a snapshot allows


def default_threads() -> int:
    """All cores but one (left to the UI), at least one."""
    import os

    return max(1, (os.cpu_count() or 2) - 1)


def probe_indices(labels: torch.Tensor, size: int) -> torch.Tensor:
    """A fixed probe batch: validation samples taken round-robin over the classes
    (the first ``size`` samples when each sample has a label per token)."""
    labels = labels.cpu()
    if labels.dim() > 1:
        return torch.arange(min(size, labels.shape[0]), dtype=torch.long)
    by_class = [torch.nonzero(labels == c).flatten().tolist() for c in torch.unique(labels).tolist()]
    picked: list[int] = []
    depth = 0
    while len(picked) < min(size, labels.numel()):
        for members in by_class:
            if depth < len(members) and len(picked) < size:
                picked.append(members[depth])
        depth += 1
    return torch.tensor(picked, dtype=torch.long)


ANALYSIS_KINDS = ("layer_probes", "projections", "top_examples", "feature_vis", "gallery", "selectivity", "inspect",
                  "predict", "attribution")
# analyses that synthesise images: token inputs are discrete, so there is nothing to optimise
IMAGE_ANALYSIS_KINDS = ("feature_vis", "gallery")


def analysis_job(session: TrainingSession, kind: str, params: dict[str, Any]) -> Any:
    """The job for an analysis ``kind`` on ``session``'s model (its snapshot is taken now).

    Analyses use the session's fixed held-out set (``analysis_set``); ``params`` name the
    layer and channel where the analysis is about one unit.
    """
    from visualizer.capture import hierarchy as h

    model, x, y = session.trainer.model, *session.analysis_set
    shape = session.trainer.dataset.input_shape
    if kind == "inspect":
        from visualizer.capture.attention import inspect_job

        tokens = params.get("tokens")
        if tokens is None:  # typed text for a model that carries its tokenizer
            if not callable(getattr(model, "encode", None)):
                raise ValueError("this model has no tokenizer: type its symbols instead")
            tokens = model.encode(str(params.get("text", "")))
        return inspect_job(model, tokens, x.device)
    if session.trainer.dataset.kind == "sequence" and kind in IMAGE_ANALYSIS_KINDS:
        raise ValueError(f"the {kind.replace('_', ' ')} analysis synthesises images, and token inputs are discrete")
    if kind == "layer_probes":
        return h.layer_probes_job(model, x, y, session.layer_order)
    if kind == "projections":
        n = int(params.get("samples", 500))
        return h.layer_projections_job(model, x[:n], session.layer_order, y=y[:n])
    if kind == "top_examples":
        return h.top_examples_job(model, x, params["layer"], int(params["channel"]))
    if kind == "feature_vis":
        return h.activation_maximisation_job(model, params["layer"], int(params["channel"]), shape,
                                             steps=int(params.get("steps", 128)))
    if kind == "gallery":
        convs = params.get("layers") or [l.name for l in session.layers if l.kind == "Conv2d"]
        return h.layer_gallery_job(model, convs, shape, channels=int(params.get("channels", 4)))
    if kind == "selectivity":
        return h.class_selectivity_job(model, x, y, params["layer"])
    if kind == "predict":  # inputs drawn or loaded by the person (e.g. the drawing pad)
        from visualizer.capture.internals import predict_job

        return predict_job(model, params["inputs"])
    if kind == "attribution":
        return attribution_request_job(session, params)
    raise KeyError(kind)


def attribution_request_job(session: TrainingSession, params: dict[str, Any]) -> Any:
    """Attribution for probe samples: params ``methods`` (list), ``samples`` (probe indices,
    default [0]), ``target`` (class or None: predicted), ``layer`` (Grad-CAM), ``settings``."""
    from visualizer.capture.attribution import attribution_job

    samples = [int(i) for i in params.get("samples", [0])]
    n = len(session.probe_x)
    if not samples or any(not 0 <= i < n for i in samples):
        raise ValueError(f"probe sample indices must lie in [0, {n}), got {samples}")
    reference = session.analysis_set[0][:256]
    job = attribution_job(session.trainer.model, session.probe_x[samples], list(params.get("methods") or ["saliency"]),
                          params.get("target"), params.get("layer"), reference, **dict(params.get("settings") or {}))

    def as_dicts() -> Any:  # plain dicts of numpy arrays: the window's process need not import the module
        result = yield from job
        return {method: a.to_dict() for method, a in result.items()}

    return as_dicts()


def _gap(cost: float, budget: float) -> float:
    """Idle time needed after work costing ``cost`` so that work takes at most ``budget`` of the time:
    cost / (cost + gap) <= budget  <=>  gap >= cost * (1 - budget) / budget."""
    return cost * (1.0 - budget) / budget if budget < 1 else 0.0


def _tokenizer_name(tokenizer: Any) -> str | None:
    """What to call a model's tokenizer: its folder's name, else its class; None without one."""
    if tokenizer is None:
        return None
    return str(getattr(tokenizer, "name_or_path", "") or "").rstrip("/").rsplit("/", 1)[-1] or type(tokenizer).__name__


class TrainingSession:
    """Ties a :class:`Trainer` to its probes and a :class:`Mailbox`.

    ``clock`` gives the seconds the capture cadence counts (``time.monotonic``); a caller that
    suspends the loop for a while and wants the cadence to ignore that time (a benchmark that
    interleaves this loop with another) passes a clock that stops with it.
    """

    def __init__(self, trainer: Trainer, mailbox: Mailbox | None = None, settings: CaptureSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trainer = trainer
        self.clock = clock
        flush_denormals()  # in the thread that steps it (``serve`` sets it again in its own)
        self.mailbox = mailbox or Mailbox()
        self.settings = settings or CaptureSettings()
        s = self.settings
        idx = probe_indices(trainer.y_val, s.probe_size)
        self.probe_x = trainer.x_val[idx.to(trainer.device)]
        self.probe_y = trainer.y_val[idx.to(trainer.device)]
        self.val_x, self.val_y = trainer.x_val[: s.val_samples], trainer.y_val[: s.val_samples]
        self.layers: list[LayerInfo] = discover_layers(trainer.model, self.probe_x[:1])
        self.layer_order = [l.name for l in self.layers]
        self.param_layers = parametrised(trainer.model, self.layers)  # frozen later (fine-tuning) still listed
        self._modules = dict(trainer.model.named_modules())
        self.activation_probe = ActivationProbe(self.layer_order, self.probe_x, self.probe_y, s.max_channels, s.map_size, s.max_units)
        self.gradient_probe = GradientProbe(self.param_layers)
        self._probe_static = (idx.numpy(), self.probe_y.cpu().numpy(), self.probe_x.cpu().float().numpy())
        is_plane = trainer.x_train.dim() == 2 and trainer.x_train.shape[1] == 2
        self.plane_probe = PlaneProbe(self.layer_order, trainer.x_train) if is_plane else None
        self.attention_layers = attention_modules(trainer.model)
        self.recurrent_layers = recurrent_modules(trainer.model)
        # control state, touched only by the loop thread
        self.playing = False
        self.pending_steps = 0
        self.speed_limit: float | None = None
        self.captures = 0
        self._controls: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.controls_sent = 0  # control calls made (any thread)
        self.controls_applied = 0  # control calls the loop has applied
        self._wake = threading.Event()
        self._armed = False
        self._force = False
        self._last_capture_step = -(10**9)
        self._last_capture_time = -math.inf
        self._last_capture_end = -math.inf
        self._last_val_end = -math.inf
        self._capture_cost = 0.0
        self._aftermath_cost = 0.0  # how much slower the steps right after a capture run (see _timed_step)
        self._aftermath: list[float] | None = None  # [steps timed, seconds of the first half, of the second]
        self._aftermaths = 0  # measured so far
        self._val_cost = 0.0
        # ((loss, accuracy), step, {ReLU layer: dead share on its inputs}) of a validation pass, on the device, for the next frame
        self._pending_val: tuple[Any, int, dict[str, Any]] | None = None
        self._dead_val: dict[str, float] = {}  # the latest dead shares, which frames report until the next ones
        self.relu_layers = [l.name for l in self.layers if l.kind in RELU_KINDS]
        self._diverged = False
        self._masked_outputs: set[str] | None = None  # layers non-finite by design (e.g. -inf masks): set by the first frame
        self._analysis_runners: dict[str, Any] = {}
        self.snapshots = SnapshotKeeper(s.snapshot_every, min_interval_s=s.snapshot_interval_s, clock=clock)
        self.snapshots.take(trainer)
        self.divergence: Divergence | None = None  # the last one, until training gets past it or resets
        self.divergences = 0
        self.alarms = AlarmTracker(self.layers)

    def run_info(self, spec: dict[str, Any] | None = None) -> RunInfo:
        """The run's static description for the views."""
        from dataclasses import asdict

        from visualizer.engine.devices import describe_device

        t, ds = self.trainer, self.trainer.dataset
        idx, labels, inputs = self._probe_static
        plane = self.plane_probe is not None
        return RunInfo(
            model_name=getattr(t.model, "display_name", None) or type(t.model).__name__,
            data_name=ds.name,
            data_kind=ds.kind,
            input_shape=tuple(ds.input_shape),
            class_names=list(ds.class_names),
            layers=list(self.layers),
            param_layers=list(self.param_layers),
            num_params=sum(p.numel() for p in t.model.parameters()),
            device=describe_device(t.device, self.settings.threads or default_threads()),
            init_scheme=getattr(t.model, "init_scheme", "default"),
            config=asdict(t.config),
            spec=dict(spec or getattr(t.model, "spec", {}) or {}),
            probe_indices=idx,
            probe_labels=labels,
            probe_inputs=inputs,
            points=ds.x_train.numpy() if plane else None,
            point_labels=ds.y_train.numpy() if plane else None,
            steps_per_epoch=t.steps_per_epoch,
            analysis_labels=self.analysis_set[1].cpu().numpy(),
            labels_from_model=ds.labels_from_model,
            tokens=None if ds.tokens is None else list(ds.tokens),
            attention_layers=list(self.attention_layers),
            recurrent_layers=list(self.recurrent_layers),
            patch_grid=getattr(t.model, "grid", None),
            tokenizer=_tokenizer_name(getattr(t.model, "tokenizer", None)),
        )

    # ------------------------------------------------------------ thread-safe controls
    def _control(self, name: str, value: Any = None) -> None:
        self.controls_sent += 1
        self._controls.put((name, value))
        self._wake.set()

    def play(self) -> None:
        self._control("play")

    def pause(self) -> None:
        self._control("pause")

    def step_n(self, n: int = 1) -> None:
        """Advance exactly ``n`` steps, then pause; the last one is always captured."""
        self._control("step", int(n))

    def run_to_epoch_end(self) -> None:
        self._control("epoch")

    def set_speed_limit(self, steps_per_s: float | None) -> None:
        self._control("speed", steps_per_s)

    def submit(self, name: str, value: Any = None) -> None:
        """Queue a trainer command (hyperparameter or "reset"), applied between steps."""
        self._control("command", (name, value))

    def save(self, path: str, description: dict[str, Any] | None = None) -> None:
        """Save a checkpoint between steps; the outcome is posted on the "notice" or "error" stream."""
        self._control("save", (path, description or {}))

    def request_analysis(self, name: str, kind: str, params: dict[str, Any] | None = None) -> None:
        """Run an analysis (see ``ANALYSES``) on a snapshot of the weights taken between steps.

        It runs in its own thread; progress and the result are posted as ``JobUpdate``s on
        "analysis:<name>", tagged with the step and ``params``. A new request under the same
        name cancels the previous one.
        """
        self._control("analysis", (name, kind, dict(params or {})))

    def cancel_analysis(self, name: str) -> None:
        self._control("cancel_analysis", name)

    def request_capture(self) -> None:
        """Capture the current state now (used while paused, e.g. after a selection change)."""
        self._control("capture")

    def request_gradients(self) -> None:
        """Capture gradients for the probe batch without training (inspect mode); see :meth:`capture_gradients`."""
        self._control("gradients")

    def arm(self) -> None:
        """Ask for a capture on the next step that the cadence allows (display timer)."""
        self._armed = True

    def disarm(self) -> None:
        """Withdraw an :meth:`arm` the cadence has not acted on yet."""
        self._armed = False

    # ------------------------------------------------------------ the loop
    def _apply_controls(self) -> None:
        while True:
            try:
                name, value = self._controls.get_nowait()
            except queue.Empty:
                return
            self.controls_applied += 1
            if name == "play":
                self.playing, self.pending_steps = True, 0
            elif name == "pause":
                if self.playing or self.pending_steps:
                    self.capture_now()  # show exactly the state we stopped at
                self.playing, self.pending_steps = False, 0
            elif name == "step":
                self.playing, self.pending_steps = False, self.pending_steps + max(0, value)
            elif name == "epoch":
                self.playing, self.pending_steps = False, self.trainer.steps_left_in_epoch()
            elif name == "speed":
                self.speed_limit = value if value and value > 0 else None
            elif name == "command":
                self.trainer.submit(*value)
                if value[0] == "reset":
                    self.trainer.apply_commands()
                    self._pending_val, self._dead_val = None, {}
                    self._diverged = False
                    self.divergence = None
                    self._masked_outputs = None
                    self.alarms.clear()
                    self.snapshots.clear()
                    self.snapshots.take(self.trainer)
                    self.gradient_probe = GradientProbe(self.param_layers)
                    self.capture_now()
            elif name == "capture":
                self.capture_now()
            elif name == "gradients":
                self.capture_gradients()
            elif name == "save":
                self._save(*value)
            elif name == "analysis":
                self._start_analysis(*value)
            elif name == "cancel_analysis" and value in self._analysis_runners:
                self._analysis_runners[value].cancel()

    def _save(self, path: str, description: dict[str, Any]) -> None:
        from visualizer.engine.checkpoint import save_checkpoint

        t = self.trainer
        desc = {"model": getattr(t.model, "spec", {}), "data": t.dataset.describe(), "step": t.step_count, **description}
        try:
            saved = save_checkpoint(path, t.model, desc)
        except (OSError, ValueError) as exc:
            self.mailbox.put("error", {"step": t.step_count, "message": f"Could not save the model: {exc}", "detail": ""})
            return
        self.mailbox.put("notice", {"message": f"Saved the model at step {t.step_count} to {saved}"})

    def _start_analysis(self, name: str, kind: str, params: dict[str, Any]) -> None:
        from visualizer.capture.jobs import JobRunner, JobUpdate

        if name not in self._analysis_runners:
            self._analysis_runners[name] = JobRunner(self.mailbox)
        runner = self._analysis_runners[name]
        tag = {"step": self.trainer.step_count, "kind": kind, **params}
        try:
            job = analysis_job(self, kind, params)  # takes the snapshot now, between steps
        except (KeyError, ValueError, TypeError) as exc:
            reason = f"unknown analysis {kind!r}" if kind not in ANALYSIS_KINDS else (
                str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
            self.mailbox.put(runner.stream(name), JobUpdate(name, 0, "error", message=reason, tag=tag))
            return
        runner.submit(name, job, tag)

    def close(self) -> None:
        """Cancel analyses and join their threads."""
        for runner in self._analysis_runners.values():
            runner.close()
        self._analysis_runners.clear()

    @property
    def analysis_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed held-out samples analyses use (up to 1,000 validation samples)."""
        return self.trainer.x_val[:1000], self.trainer.y_val[:1000]

    @property
    def busy(self) -> bool:
        return self.playing or self.pending_steps > 0

    def serve(self, stop: threading.Event, on_error: Any = None) -> None:
        """Loop until ``stop`` is set: apply controls, train while playing or stepping.

        An exception in a step pauses training and is posted on the "error" stream (and
        passed to ``on_error``); the loop keeps serving so the person can fix settings.
        """
        if self.trainer.device.type == "cpu":
            torch.set_num_threads(self.settings.threads or default_threads())
        flush_denormals()
        next_slot = time.monotonic()
        posted: tuple[bool, int] | None = None
        while not stop.is_set():
            try:
                self._apply_controls()
                status = (self.busy, self.trainer.step_count, self.controls_applied)
                if status != posted and (not status[0] or posted is None or not posted[0]):
                    # "status" says when training starts and where it stopped (not every step);
                    # "controls" lets the reader tell a stale "idle" from the answer to its last call
                    self.mailbox.put("status", {"busy": status[0], "step": status[1], "controls": status[2]})
                    posted = status
                if not self.busy:
                    self._wake.wait(0.05)
                    self._wake.clear()
                    continue
                last = self.pending_steps == 1
                if last:
                    self._force = True
                self.step()
                if self.pending_steps:
                    self.pending_steps -= 1
                if self.speed_limit:
                    next_slot = max(next_slot + 1.0 / self.speed_limit, time.monotonic() - 1.0)
                    stop.wait(max(0.0, next_slot - time.monotonic()))
            except Exception as exc:  # a person's model or settings broke the step
                from visualizer.capture.errors import explain

                self.playing, self.pending_steps = False, 0
                message = explain(exc, f"Training step {self.trainer.step_count + 1}")
                self.mailbox.put("error", {"step": self.trainer.step_count, "message": message, "detail": traceback.format_exc()})
                if on_error is not None:
                    on_error(exc)
        self.close()

    def step(self) -> Frame | None:
        """One training step; captured (and returned) if armed and the cadence allows.

        Settings changes are applied first; a snapshot is taken after one, and every
        ``snapshot_every`` steps, so a divergence can be rolled back and replayed exactly.
        """
        t = self.trainer
        applied = t.apply_commands()
        if applied:
            if any(c.name == "reset" for c in applied):
                self._masked_outputs = None
                self.snapshots.clear()  # the old run's snapshots mean nothing now
            self._aftermath = None  # new settings change the step's time: no measure of a capture's wake
            self.snapshots.take(t)
        elif self.snapshots.due(t.step_count):
            self.snapshots.take(t)
        if not self._due():
            if self._aftermath is None:
                self.trainer.step()
            else:
                self._timed_step()
            return None
        self.trainer.step(observer=self.gradient_probe)
        divergences = self.divergences
        # the step itself would have run anyway: a capture costs its hooks' time and the publishing
        frame = self._publish(self.gradient_probe.take(), time.perf_counter() - self.gradient_probe.seconds)
        if self.captures > 1 and self.divergences == divergences:  # training goes on: time the steps after it
            self._aftermath = [0, 0.0, 0.0]  # (after the cold first capture they would mislead)
        return frame

    def run(self, steps: int, stop: threading.Event | None = None) -> int:
        """Headless: run ``steps`` steps (capturing when armed); returns steps run. Stops early when
        a capture finds the run diverged (it is then rolled back; see ``divergence``)."""
        done, divergences = 0, self.divergences
        while done < steps and not (stop is not None and stop.is_set()) and self.divergences == divergences:
            self._apply_controls()
            self.step()
            done += 1
        return done

    AFTERMATH_STEPS = 8  # steps timed right after a capture, then as many more to compare with

    def _timed_step(self) -> None:
        """An unarmed step right after a capture, timed: the first AFTERMATH_STEPS steps against the
        next as many give what the capture cost beyond its own time (its work evicted the training
        loop's code and data from the caches: for a small MLP, a tenth more than the capture itself)."""
        t0 = time.perf_counter()
        self.trainer.step()
        seconds = time.perf_counter() - t0
        timing = self._aftermath
        n = self.AFTERMATH_STEPS
        timing[1 if timing[0] < n else 2] += seconds
        timing[0] += 1
        if timing[0] == 2 * n:
            excess = max(0.0, timing[1] - timing[2])
            self._aftermath_cost = excess if not self._aftermaths else 0.8 * self._aftermath_cost + 0.2 * excess
            self._aftermaths += 1
            self._aftermath = None

    def _due(self) -> bool:
        if self._force:
            return True
        if not self._armed:
            return False
        s = self.settings
        if self.trainer.step_count + 1 - self._last_capture_step < s.every_k_steps:
            return False
        now = self.clock()
        # the first capture is cold (allocations, lazy imports): the second comes at once and measures the cost
        cost = self._capture_cost + self._aftermath_cost
        gap = 0.0 if self.captures == 1 else min(_gap(cost, s.budget * 2 / 3 if s.budget < 1 else 1.0),
                                                 s.max_capture_gap_s)
        return now - self._last_capture_time >= 1.0 / s.max_rate_hz and now - self._last_capture_end >= gap

    def _val_due(self, now: float) -> bool:
        if self._force:
            return True
        s = self.settings
        return now - self._last_val_end >= max(s.val_interval_s, _gap(self._val_cost, s.budget / 3 if s.budget < 1 else 1.0))

    def capture_gradients(self) -> Frame:
        """A frame with the gradients of the loss on the probe batch (eval mode), weights unchanged.

        For a model that is inspected, not trained: the gradient panels show which layers the
        chosen inputs would change, and how much, without taking a step.
        """
        from visualizer.engine.trainer import token_loss

        model = self.trainer.model
        t0 = time.perf_counter()
        with preserved_state(model, self.trainer.device):
            model.zero_grad(set_to_none=True)
            token_loss(first_tensor(model(self.probe_x)), self.probe_y).backward()  # per-token tasks too
            self.gradient_probe.after_backward(model)
        model.zero_grad(set_to_none=True)
        self._force = True
        return self._publish(self.gradient_probe.take(), t0)

    def capture_now(self) -> Frame:
        """Capture the current weights without training (no gradients in this frame), with the
        validation loss and accuracy of exactly these weights."""
        self._force = True
        return self._publish({}, time.perf_counter())

    def _publish(self, grads: dict[str, Any], t0: float) -> Frame:
        trainer = self.trainer
        model = trainer.model
        now, tick = time.monotonic(), self.clock()  # the frame's time; the cadence's
        want_val = self._val_due(tick)
        with preserved_state(model, trainer.device):  # once for every probe: eval mode, random state kept
            with torch.no_grad():
                filters = filter_images(model, self.layer_order, tuple(self.probe_x.shape[1:]))
                if not filters and callable(getattr(model, "parametrised_modules", None)):  # TorchScript: no modules
                    filters = parameter_filters(model, tuple(self.probe_x.shape[1:]))
            tree: dict[str, Any] = {
                "acts": self.activation_probe.capture(model),
                "grads": grads,
                "filters": filters,
            }
            if self.plane_probe is not None:
                tree["plane"] = self.plane_probe.capture(model)
            if self.attention_layers or self.recurrent_layers:
                tree["attention"], tree["recurrent"] = sequence_captures(model, self.probe_x, bool(self.recurrent_layers))
            with torch.no_grad():
                tree["moved"] = weight_movement(model, self.param_layers, trainer.initial_state)
                tree["finite"] = parameters_finite(model)
            # validation runs after the frame is sent, and rides on the next one, so it never delays
            # a frame; a forced capture (pause, a step) carries its own, of exactly the state shown
            inline_val = want_val and self._force
            val_seconds = self._validate() if inline_val else 0.0
        if self._pending_val is not None:
            tree["val"], val_step, tree["dead"] = self._pending_val
            self._pending_val = None
        steps, parts, lrs = trainer.take_scalar_rows()
        tree["scalars"] = parts
        host = to_host(tree)
        frame = self._frame(host, steps, lrs, now, val_step if "val" in host else None)
        self._armed = self._force = False
        self._last_capture_step = trainer.step_count
        self._last_capture_time = tick
        cost = time.perf_counter() - t0 - val_seconds
        # the first capture is cold (allocations, lazy imports): the second one's cost replaces it
        self._capture_cost = cost if self.captures <= 1 else 0.8 * self._capture_cost + 0.2 * cost
        self.captures += 1
        self._last_capture_end = self.clock()
        self._aftermath = None  # a capture between steps (a pause, a reset) ends any timing; see step()
        losses = frame.scalars.values["train_loss"]
        if frame.info["nonfinite"]:
            bad = frame.info["nonfinite_steps"]  # the loss of a step: that step
            if len(bad):
                return self._diverge(int(bad[0]), frame)
            # else a weight, this step's gradients or a layer's output on the probe batch (with the weights
            # after this step): some step since the last good frame, up to the next one, went non-finite
            return self._diverge(max(self.snapshots.verified_step, 0) + 1, frame, until=trainer.step_count + 1)
        if len(losses):
            self.snapshots.verify(int(frame.scalars.steps[-1]))
        self.mailbox.put("train", frame)
        if want_val and not inline_val:
            self._validate()  # the frame is on its way: this one's validation goes with the next
        return frame

    def _validate(self) -> float:
        """Evaluate the live validation subset now; the result waits for the next frame. Folds the
        cost into the estimate that spaces validations; returns the seconds it took."""
        v0 = time.perf_counter()
        with preserved_state(self.trainer.model, self.trainer.device):
            with AliveUnits(self.trainer.model, self.relu_layers) as alive:  # dead ReLUs judged on every input
                result = self.trainer.evaluate(self.val_x, self.val_y)
            self._pending_val = (result, self.trainer.step_count, alive.dead_fractions())
        seconds = time.perf_counter() - v0
        self._val_cost = seconds if self._val_cost == 0 else 0.8 * self._val_cost + 0.2 * seconds
        self._last_val_end = self.clock()
        return seconds

    def _diverge(self, first_bad: int, frame: Frame, until: int | None = None) -> Frame:
        """A captured frame found a NaN or infinity (first possible step ``first_bad``; replayed through
        ``until``, default ``first_bad``): pause, roll back to the last good snapshot, replay to find the
        first non-finite layer and step, and post it on "error" (with "nonfinite")."""
        self.playing, self.pending_steps = False, 0
        self._pending_val, self._dead_val = None, {}  # of a state being rolled back
        snap = self.snapshots.before(first_bad, self.settings.rollback_margin)
        if snap is None:  # nothing good to go back to (e.g. weights that were never finite)
            self.mailbox.put("train", frame)
            if not self._diverged:
                self._diverged = True
                d = Divergence(first_bad, None, "loss", "NaN", None, reproduced=False)
                self.mailbox.put("error", {"step": first_bad, "detail": "", "message": d.message(), "nonfinite": d.to_dict()})
            return frame
        d = locate_nonfinite(self.trainer, snap, until or first_bad, self.layer_order, self.param_layers)
        probe_bad = frame.info.get("nonfinite_outputs") or []
        if not d.reproduced and probe_bad:  # training stayed finite; the probe forward (eval mode) did not
            d = replace(d, layer=min(probe_bad, key=self.layer_order.index), where="probe output", reproduced=True)
        self.snapshots.drop_after(snap.step)
        self.divergence, self._diverged = d, False
        self.divergences += 1
        self.alarms.clear()
        self.mailbox.put("error", {"step": d.step, "detail": "", "message": d.message(), "nonfinite": d.to_dict()})
        return self.capture_now()  # the rolled-back state, marked "rolled_back" for the views

    def _frame(self, host: dict[str, Any], steps: np.ndarray, lrs: np.ndarray, now: float, val_step: int | None) -> Frame:
        rows = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in host["scalars"]] or [np.zeros((0, 2))])
        scalars = ScalarChunk(steps, {"train_loss": rows[:, 0], "train_acc": rows[:, 1], "lr": lrs})
        if "dead" in host:
            self._dead_val = {n: float(v) for n, v in host["dead"].items()}
        dead_basis = f"the {len(self.val_x):,} validation inputs"
        acts = {}
        for info in self.layers:
            r = host["acts"]["layers"].get(info.name)
            if r is None:
                continue
            acts[info.name] = LayerActivation(
                name=info.name,
                shape=info.output_shape,
                maps=r["maps"].astype(np.float32),
                channel_mean=r["channel_mean"],
                channel_max=r["channel_max"],
                dead_fraction=self._dead_val.get(info.name, float(r["dead_fraction"])),
                norm=float(r["norm"]),
                grad_norm=float(r.get("grad_norm", np.nan)),
                dead_basis=dead_basis if info.name in self._dead_val else "the probe samples",
            )
        grads = {
            name: LayerGradient(
                name=name,
                grad_norm=float(g["grad_norm"]),
                weight_norm=float(g["weight_norm"]),
                update_ratio=float(g.get("update_ratio", np.nan)),
                weight_hist=g["weight_hist"],
                grad_hist=g["grad_hist"],
                weight_edges=self.gradient_probe.weight_edges[name],
                grad_edges=self.gradient_probe.grad_edges,
            )
            for name, g in host["grads"].items()
        }
        idx, labels, inputs = self._probe_static
        val = None
        if "val" in host:
            val = {"val_loss": float(host["val"][0]), "val_acc": float(host["val"][1]), "step": val_step}
        return Frame(
            step=self.trainer.step_count,
            time=now,
            epoch=self.trainer.epoch,
            scalars=scalars,
            val=val,
            layer_order=self.layer_order,
            activations=acts,
            gradients=grads,
            filters=host["filters"],
            probe=ProbeOutputs(idx, labels, host["acts"]["probs"], inputs),
            plane=None if "plane" not in host else {**host["plane"], "extent": self.plane_probe.extent},
            attention=host.get("attention", {}),
            recurrent=host.get("recurrent", {}),
            info=self._info(rows, steps, acts, grads, host.get("moved", {}),
                            [n for n, r in host["acts"]["layers"].items() if not bool(r.get("finite", True))],
                            np.asarray(host["finite"]).tolist()),
        )

    def _info(self, rows: np.ndarray, steps: np.ndarray, acts: dict[str, LayerActivation],
              grads: dict[str, LayerGradient], moved: dict[str, Any], bad_outputs: list[str],
              finite: list[bool]) -> dict[str, Any]:
        """Frame info: non-finite flag (the loss of a step since the last frame: ``nonfinite_steps``; the
        weights or this step's gradients: ``nonfinite_parameters``; a layer's output on the probe batch:
        ``nonfinite_outputs``), learning rate, layer alarms,
        the divergence being shown, and per layer ||w - w_start|| / ||w_start|| since the run started
        (or the model was loaded) and frozen layers."""
        t = self.trainer
        bad_steps = steps[~np.isfinite(rows[:, 0])]
        if self._masked_outputs is None:
            self._masked_outputs = set(bad_outputs)  # non-finite from the start: a design, not a divergence
        # a layer that went non-finite on the probe batch since: only on a frame that carries training steps
        bad_outputs = [n for n in bad_outputs if n not in self._masked_outputs] if len(rows) else []
        bad_parameters = [what for what, ok in zip(("weights", "gradients"), finite) if not ok] if len(rows) else []
        info: dict[str, Any] = {
            "nonfinite": bool(len(bad_steps) or bad_outputs or bad_parameters), "lr": t.config.lr,
            "nonfinite_steps": [int(k) for k in bad_steps], "nonfinite_outputs": bad_outputs,
            "nonfinite_parameters": bad_parameters,
            "moved": {k: float(v) for k, v in moved.items()},
            "frozen": [n for n in self.param_layers
                       if not any(p.requires_grad for p in self._modules[n].parameters(recurse=False))],
        }
        if self.divergence is not None and t.step_count > self.divergence.step:
            self.divergence = None  # training got past it
        if self.divergence is not None:
            info["divergence"] = self.divergence.to_dict()
            if t.step_count == self.divergence.rolled_back_to and not len(rows):
                info["rolled_back"] = self.divergence.rolled_back_to
        if not info["nonfinite"] and acts:
            info["alarms"] = self.alarms.update(t.step_count, acts, grads)
        return info
