"""``syncs_unarmed``: host synchronisations on training steps that are not captured.

Counted with :class:`~visualizer.capture.syncs.SyncCounter` (``.item()``, ``.cpu()``, ...);
on CUDA the same steps also run under ``torch.cuda.set_sync_debug_mode("error")``, which
catches synchronisations the counter cannot see (e.g. a blocking host-to-device copy).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Threads
from benchmarks.workloads import Workload, run_each

KEYS = ("syncs_unarmed",)
STEPS = 50


def counted(session: Any, steps: int) -> list[str]:
    """The synchronising calls seen during ``steps`` unarmed steps."""
    from visualizer.capture.syncs import SyncCounter

    with SyncCounter() as counter:
        for _ in range(steps):
            session.step()
    return counter.calls


def cuda_debug(session: Any, steps: int) -> str | None:
    """None if ``steps`` unarmed steps run under CUDA sync debug mode "error"; else where it raised."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(steps):
            session.step()
    except RuntimeError as exc:
        return f"step {i + 1}: {str(exc).splitlines()[0][:80]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()
    return None


def measure(workload: Workload, opts: Options) -> list[Result]:
    from visualizer.capture.session import TrainingSession

    with Threads(opts.threads):
        session = TrainingSession(workload.build(opts.device))
        session.arm()
        session.step()  # one captured step first: a capture must leave nothing behind that syncs
        session.mailbox.take("train")
        calls = counted(session, STEPS)
        raised = cuda_debug(session, STEPS) if opts.device_type == "cuda" else None
    count = len(calls) + (1 if raised and not calls else 0)
    notes = [", ".join(f"{name} x{n}" for name, n in Counter(calls).items())] if calls else []
    if opts.device_type == "cuda":
        notes.append(f"CUDA sync debug: {raised}" if raised else "CUDA sync debug mode: clean")
    note = f"{STEPS} unarmed steps after a captured one" + (f"; {'; '.join(notes)}" if notes else "")
    return [Result("syncs_unarmed", workload.key, count, opts.device_type, opts.threads, note=note,
                   extra={"calls": dict(Counter(calls)), "cuda_sync_debug": raised})]


def run(opts: Options) -> list[Result]:
    return run_each("syncs", KEYS, opts, lambda w: measure(w, opts))
