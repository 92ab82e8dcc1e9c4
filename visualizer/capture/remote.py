"""A training session in a worker process, driven exactly like an in-process one.

On the CPU, the training loop's Python code (hooks, optimizer, bookkeeping) and the UI's
drawing would otherwise take turns on one interpreter lock: the window would stutter and
training would slow down. :class:`RemoteSession` builds the run in a spawned process and
serves :class:`~visualizer.capture.session.TrainingSession` there. Control calls are sent
over a pipe; whatever the worker posts to its mailbox (frames, errors, notices, status)
comes back over another pipe and is put into the caller's mailbox (latest wins). Nothing
here imports torch in the calling process.
"""
from __future__ import annotations

import multiprocessing as mp
import threading
import traceback
from typing import Any

from visualizer.stream.mailbox import Mailbox

CONTROLS = ("play", "pause", "step_n", "run_to_epoch_end", "set_speed_limit", "submit", "request_capture", "save", "arm",
            "request_analysis", "cancel_analysis", "request_gradients")


class _PipeMailbox:
    """The worker's mailbox: every post goes straight back to the parent process."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def put(self, stream: str, item: Any) -> None:
        with self._lock:
            self._conn.send((stream, item))

    def take(self, stream: str) -> None:  # nothing is read on the worker's side
        return None


def _worker(spec: dict[str, Any], settings: Any, controls: Any, posts: Any) -> None:
    """Body of the worker process: build the run, then serve it until told to quit."""
    mailbox = _PipeMailbox(posts)
    try:
        from visualizer.capture.session import TrainingSession
        from visualizer.engine.run import RunSpec, build_trainer

        run_spec = RunSpec.from_dict(spec)
        session = TrainingSession(build_trainer(run_spec), mailbox, settings)  # type: ignore[arg-type]
        info = session.run_info()
        info.run_spec = run_spec.to_dict()
    except Exception as exc:
        mailbox.put("error", {"step": None, "message": f"Could not start the run: {exc}", "detail": traceback.format_exc()})
        return
    mailbox.put("run", info)
    stop = threading.Event()

    def read_controls() -> None:
        try:
            while True:
                name, args = controls.recv()
                if name == "quit":
                    break
                getattr(session, name)(*args)
        except (EOFError, OSError):
            pass  # the parent went away
        finally:
            stop.set()

    threading.Thread(target=read_controls, name="visualizer-controls", daemon=True).start()
    session.capture_now()
    session.serve(stop)


class RemoteSession:
    """The control surface of :class:`TrainingSession`, with the loop in another process.

    ``busy`` and ``step`` follow the worker's "status" posts. ``close()`` asks the worker
    to quit and joins it (terminating it if it does not end in time).
    """

    def __init__(self, spec: dict[str, Any], mailbox: Mailbox, settings: Any = None) -> None:
        ctx = mp.get_context("spawn")
        self.spec = spec
        self.mailbox = mailbox
        self.busy = False
        self.step = 0
        self.controls_sent = 0  # calls that the worker's loop answers with a "status" count
        self._closed = False
        self.info: Any = None
        control_out, control_in = ctx.Pipe(duplex=False)  # (reader, writer)
        post_out, post_in = ctx.Pipe(duplex=False)
        self._send = control_in
        self._lock = threading.Lock()
        self.process = ctx.Process(target=_worker, args=(spec, settings, control_out, post_in),
                                   name="visualizer-trainer", daemon=True)
        self.process.start()
        control_out.close()
        post_in.close()
        self._receiver = threading.Thread(target=self._receive, args=(post_out,), name="visualizer-receiver", daemon=True)
        self._receiver.start()

    def _receive(self, conn: Any) -> None:
        try:
            while True:
                stream, item = conn.recv()
                if self._closed:
                    continue  # a replaced run: nothing of it may reach the window
                if stream == "run":
                    self.info = item
                    self.mailbox.put("run", {"session": self, "info": item, "spec": item.run_spec})
                    continue
                if stream == "status" and item["controls"] >= self.controls_sent:
                    self.busy, self.step = item["busy"], item["step"]
                self.mailbox.put(stream, item)
        except (EOFError, OSError):
            if not self._closed:
                self.process.join(1.0)
            code = self.process.exitcode
            if not self._closed and code != 0:  # the worker died (killed, crashed in native code): say so
                self.busy = False
                self.mailbox.put("error", {"step": self.step, "detail": "", "message": (
                    f"The training process ended unexpectedly (exit code {code}). The run is lost: "
                    "start it again from File ▸ New run or a demo.")})
        finally:
            conn.close()

    def _call(self, name: str, *args: Any) -> None:
        with self._lock:
            try:
                self._send.send((name, args))
            except (OSError, ValueError):
                pass  # the worker has ended; its error (if any) is already in the mailbox

    def __getattr__(self, name: str) -> Any:
        if name not in CONTROLS:
            raise AttributeError(name)

        def call(*args: Any) -> None:
            if name != "arm":
                self.controls_sent += 1
            if name in ("play", "step_n", "run_to_epoch_end"):
                self.busy = True  # until the worker answers this call
            self._call(name, *args)

        return call

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker and join it and the receiver thread."""
        self._closed = True
        self._call("quit")
        self._send.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self._receiver.join(timeout)
