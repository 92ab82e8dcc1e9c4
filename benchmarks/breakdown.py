"""Where the captured loop's time goes: each step of the app's loop (armed before every step, as
in ``throughput_ratio_capture``) timed and filed by what it did, beside the bare loop.

    python -m benchmarks.breakdown [--seconds 30] [--workload mlp-spiral] [--device cpu]

Chunks of about 0.12 s (at most 256 steps) alternate between the two loops (the bare chunk
timed whole, the captured one step by step), so drift of the machine hits both alike. A kind's share is its steps' time
beyond as many bare steps, over the captured loop's time; the shares add up to one minus the
captured loop's speed ratio. A capture's step holds its probes, its block close and any
validation; "after a capture" are the steps the session times to measure a capture's wake.
On a GPU the per-step times are host times (no sync per step): the shares are the host's.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.loops import BareLoop, CapturedLoop
from benchmarks.timing import Stopwatch, Threads, run_for, synchronize
from benchmarks.workloads import WORKLOADS, Workload, device_name, resolve_device

CHUNK_S = 0.12  # seconds of one loop's chunk (256 steps at most, 4 at least)
KINDS = ("plain", "block close", "capture", "after a capture", "snapshot")


@dataclass
class Breakdown:
    """Steps and seconds of the captured loop by kind, and the bare loop's mean step."""

    workload: str
    device: str
    threads: int
    bare_step_s: float
    frames: int
    chunk: int  # steps per chunk
    spent: dict[str, list[float]]  # kind: [steps, seconds]

    @property
    def steps(self) -> int:
        return int(sum(n for n, _ in self.spent.values()))

    @property
    def seconds(self) -> float:
        return sum(t for _, t in self.spent.values())

    @property
    def ratio(self) -> float:
        """The captured loop's speed over the bare loop's."""
        return self.bare_step_s * self.steps / self.seconds

    def share(self, kind: str) -> float:
        """The kind's time beyond as many bare steps, over the captured loop's time."""
        n, t = self.spent[kind]
        return (t - n * self.bare_step_s) / self.seconds

    def text(self) -> str:
        def duration(seconds: float) -> str:
            return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"

        lines = [f"{self.workload} on {self.device}, {self.threads} thread(s): captured loop {self.ratio:.3f} of the "
                 f"bare loop's speed ({self.steps:,} steps each in chunks of {self.chunk}, bare step {duration(self.bare_step_s)}), "
                 f"{self.frames / self.seconds:.1f} frames/s",
                 f"  {'kind':16s} {'steps':>8s} {'mean step':>11s} {'share':>7s}"]
        for kind, (n, t) in self.spent.items():
            if n:
                lines.append(f"  {kind:16s} {int(n):8,d} {duration(t / n):>11s} {self.share(kind):7.4f}")
        lines.append(f"  {'all':16s} {self.steps:8,d} {duration(self.seconds / self.steps):>11s} {1 - self.ratio:7.4f}")
        return "\n".join(lines)


def measure(workload: Workload, seconds: float, device_choice: str = "auto", warmup_s: float = 1.5) -> Breakdown:
    """Alternate chunks of the two loops for ``seconds`` (after ``warmup_s`` of each) on
    ``device_choice`` ("auto", "cpu" or "cuda")."""
    from visualizer.capture.session import TrainingSession, default_threads

    device = resolve_device(device_choice)
    threads = default_threads()
    with Threads(threads):
        trainer = workload.build(device)
        bare = BareLoop(trainer)
        watch = Stopwatch()
        loop = CapturedLoop(trainer, clock=watch)
        keeper = loop.session.snapshots
        n, elapsed = run_for(bare.step, warmup_s, device)
        chunk = max(4, min(256, round(CHUNK_S * n / elapsed))) if n else 4
        with watch:
            run_for(loop.step, warmup_s, device)
        spent: dict[str, list[float]] = {k: [0, 0.0] for k in KINDS}
        bare_steps, bare_s, frames, since = 0, 0.0, loop.frames, 10**9
        tail = 2 * TrainingSession.AFTERMATH_STEPS
        clock = time.perf_counter
        deadline = clock() + seconds
        while clock() < deadline:
            synchronize(device)
            t0 = clock()
            for _ in range(chunk):
                bare.step()
            synchronize(device)
            bare_s += clock() - t0
            bare_steps += chunk
            with watch:
                for _ in range(chunk):
                    shown, closed = loop.frames, trainer.blocks_closed
                    newest = keeper.snapshots[-1] if keeper.snapshots else None
                    t0 = clock()
                    loop.step()
                    took = clock() - t0
                    since += 1
                    if loop.frames != shown:
                        kind, since = "capture", 0
                    elif trainer.blocks_closed != closed:
                        kind = "block close"
                    elif keeper.snapshots and keeper.snapshots[-1] is not newest:
                        kind = "snapshot"
                    else:
                        kind = "after a capture" if since <= tail else "plain"
                    spent[kind][0] += 1
                    spent[kind][1] += took
            synchronize(device)
    return Breakdown(workload.key, device_name(device), threads, bare_s / bare_steps, loop.frames - frames, chunk, spent)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="per workload (default 30)")
    parser.add_argument("--workload", choices=[w.key for w in WORKLOADS], action="append",
                        help="one of the benchmark workloads (repeatable; default: all)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    chosen = [w for w in WORKLOADS if not args.workload or w.key in args.workload]
    for workload in chosen:
        reason = workload.missing()
        print(f"{workload.key}: {reason}" if reason else measure(workload, args.seconds, args.device).text(), flush=True)


if __name__ == "__main__":
    main()
