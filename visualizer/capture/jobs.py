"""Cancellable analysis jobs that report progress, and a runner that keeps them off the
training thread and the UI thread (Qt-free).

A *job* is a generator: it does one unit of work, yields a :class:`Progress`, does the
next unit, and finally ``return``s its result. Whoever drives it (:func:`run_job`) checks a
cancel flag between units, so a cancelled job stops after at most the unit in flight.
Jobs never see the live model: the ``*_job`` factories take a :func:`snapshot` eagerly,
in the caller's thread (between training steps), before the generator starts.
"""
from __future__ import annotations

import copy
import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from visualizer.stream.mailbox import Mailbox

R = TypeVar("R")


class Progress(NamedTuple):
    """Units of work ``done`` out of ``total``, a short message, and optional partial data
    (plain numbers or numpy arrays, e.g. the current activation or the probes so far)."""

    done: int
    total: int
    message: str = ""
    data: Any = None


Job = Generator[Progress, None, R]
"""A generator yielding :class:`Progress` between units of work and returning its result."""


class Cancelled(Exception):
    """Raised by :func:`run_job` when the cancel flag was set between two units of work."""


def snapshot(model: nn.Module) -> nn.Module:
    """A private copy of ``model`` for an analysis: same device, eval mode, frozen
    parameters without ``.grad``, no hooks. Take it between training steps."""
    with torch.no_grad():
        copied = copy.deepcopy(model)
    copied.eval()
    for p in copied.parameters():
        p.grad = None
        p.requires_grad_(False)
    for m in copied.modules():  # hooks attached to the original (a capture in progress) stay there
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                      "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs"):
            d = getattr(m, hooks, None)
            if d is not None:
                d.clear()
    return copied


def run_job(job: Job[R], cancel: threading.Event | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> R:
    """Drive ``job`` to its result, calling ``on_progress`` after every unit.

    The cancel flag is checked before each unit starts, so setting it (from another thread
    or from ``on_progress``) stops the job after at most the one unit already running; the
    generator is closed (its ``finally`` blocks run, hooks come off) and :class:`Cancelled`
    is raised.
    """
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            try:
                update = next(job)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(update if isinstance(update, Progress) else Progress(*update))
    finally:
        job.close()


@dataclass
class JobUpdate:
    """What a :class:`JobRunner` posts on ``"analysis:<name>"``: the job's state, progress and,
    when ``state == "done"``, its result (numpy arrays and plain numbers)."""

    name: str
    job_id: int
    state: str  # "running", "done", "cancelled" or "error"
    done: int = 0
    total: int = 0
    message: str = ""
    data: Any = None  # partial data carried by the latest Progress
    result: Any = None
    error: str = ""
    tag: Any = None  # what the requester attached to the job (e.g. the step and layer it is for)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class JobRunner:
    """Runs one analysis job at a time in its own daemon thread.

    Submitting a job cancels the one running (and any not started yet): the newest request
    wins. Progress, results, cancellations and errors are posted as :class:`JobUpdate`
    frames on the mailbox stream ``"analysis:<name>"``. Give each panel its own runner if
    its analyses must not cancel each other.
    """

    def __init__(self, mailbox: Mailbox | None = None, threads: int | None = 1, prefix: str = "analysis:") -> None:
        self.mailbox = mailbox or Mailbox()
        self.prefix = prefix
        self.threads = threads
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: tuple[int, str, Job[Any]] | None = None
        self._cancel = threading.Event()  # the flag of the job now running
        self._running: int | None = None
        self._next_id = 0
        self._closed = False
        self._tags: dict[int, Any] = {}
        self._thread = threading.Thread(target=self._loop, name="analysis-worker", daemon=True)
        self._thread.start()

    def stream(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def submit(self, name: str, job: Job[Any], tag: Any = None) -> int:
        """Queue ``job`` (a started generator, e.g. from a ``*_job`` factory) under ``name``,
        cancelling whatever runs now; returns the job id carried by its updates, which
        also carry ``tag``."""
        with self._lock:
            if self._closed:
                job.close()
                raise RuntimeError("the job runner is closed")
            self._next_id += 1
            job_id = self._next_id
            if self._pending is not None:
                old_id, old_name, old_job = self._pending
                old_job.close()
                self._post(old_name, JobUpdate(old_name, old_id, "cancelled"))
            self._pending = (job_id, name, job)
            self._tags[job_id] = tag
            self._cancel.set()
            self._wake.notify()
        return job_id

    def cancel(self) -> None:
        """Cancel the running job and any job not started yet."""
        with self._lock:
            if self._pending is not None:
                old_id, old_name, old_job = self._pending
                old_job.close()
                self._post(old_name, JobUpdate(old_name, old_id, "cancelled"))
                self._pending = None
            self._cancel.set()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or self._pending is not None

    def close(self, timeout: float | None = 10.0) -> None:
        """Cancel everything and wait for the worker thread to end."""
        with self._lock:
            self._closed = True
            if self._pending is not None:
                self._pending[2].close()
                self._pending = None
            self._cancel.set()
            self._wake.notify()
        self._thread.join(timeout)

    def _post(self, name: str, update: JobUpdate) -> None:
        update.tag = self._tags.get(update.job_id)
        if update.state != "running":
            self._tags.pop(update.job_id, None)
        self.mailbox.put(self.stream(name), update)

    def _loop(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)  # per thread: leave the other cores to training and the UI
        while True:
            with self._lock:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job_id, name, job = self._pending
                self._pending = None
                self._cancel = cancel = threading.Event()
                self._running = job_id
            self._run_one(job_id, name, job, cancel)
            with self._lock:
                self._running = None

    def _run_one(self, job_id: int, name: str, job: Job[Any], cancel: threading.Event) -> None:
        def progress(p: Progress) -> None:
            if not cancel.is_set():
                self._post(name, JobUpdate(name, job_id, "running", p.done, p.total, p.message, p.data))

        last = Progress(0, 0)

        def track(p: Progress) -> None:
            nonlocal last
            last = p
            progress(p)

        try:
            result = run_job(job, cancel, track)
        except Cancelled:
            self._post(name, JobUpdate(name, job_id, "cancelled", last.done, last.total))
        except Exception as exc:  # a bad layer name, a model that cannot run this analysis
            from visualizer.capture.errors import explain

            self._post(name, JobUpdate(name, job_id, "error", last.done, last.total,
                                       message=explain(exc, f"The analysis {name!r}"), error=traceback.format_exc()))
        else:
            self._post(name, JobUpdate(name, job_id, "done", last.total, last.total, last.message, result=result))
