"""Measuring helpers shared by every benchmark: timed windows, interleaved A/B pairs,
summaries (median and spread), percentiles and resident memory."""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work; called at window boundaries only, never per step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_for(step: Callable[[], object], seconds: float, device: torch.device) -> tuple[int, float]:
    """Call ``step`` until ``seconds`` have passed; returns (steps, elapsed seconds)."""
    synchronize(device)
    start = time.perf_counter()
    end = start + seconds
    steps = 0
    while time.perf_counter() < end:
        step()
        steps += 1
    synchronize(device)
    return steps, time.perf_counter() - start


class Stopwatch:
    """A clock (seconds, like ``time.monotonic``) that runs only inside ``with watch:`` blocks."""

    def __init__(self) -> None:
        self._total = 0.0
        self._since: float | None = None

    def __call__(self) -> float:
        return self._total + (time.monotonic() - self._since if self._since is not None else 0.0)

    def __enter__(self) -> Stopwatch:
        self._since = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self._total = self()
        self._since = None


class PaintedLatency:
    """Capture-to-screen latency of shown frames. A frame is on screen once its panels were all
    rendered (``rendered``), a view painted after that (``painted``), and no view has painted for
    ``quiet_s`` since: a frame's views may paint in more than one pass of the window (panels
    rendered in different event-loop turns, a view dirtied again by its own paint). ``poll``
    (called often, e.g. by a timer) returns the latency in ms, capture to the end of the last
    of those paints, once it is known."""

    def __init__(self, quiet_s: float = 0.015, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s, self.clock = quiet_s, clock
        self.last_paint = -math.inf
        self._waiting: tuple[float, float] | None = None  # (capture time, all rendered at)

    def rendered(self, capture_time: float) -> None:
        """The newest frame's panels are all rendered (a frame still waiting is dropped)."""
        self._waiting = (capture_time, self.clock())

    def painted(self) -> None:
        """A view finished painting."""
        self.last_paint = self.clock()

    def poll(self) -> float | None:
        waiting, last = self._waiting, self.last_paint
        if waiting is None or last <= waiting[1] or self.clock() - last < self.quiet_s:
            return None
        self._waiting = None
        return (last - waiting[0]) * 1000.0


def rate(step: Callable[[], object], seconds: float, device: torch.device) -> float:
    """Steps per second of ``step`` over one window of ``seconds``."""
    steps, elapsed = run_for(step, seconds, device)
    return steps / elapsed


@dataclass(frozen=True)
class Summary:
    """A figure from repeated measurements (their median, or a pooled value) and their range."""

    value: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(values), min(values), max(values), len(values))


def interleave(measures: Sequence[Callable[[], float]], rounds: int) -> list[list[float]]:
    """Run each measurement in turn, ``rounds`` times over (A, B, A, B, ... or A, B, C, A, ...).

    Side by side in one process, so slow drift of the machine (other load, thermal state)
    hits all alike; compare them round by round. Returns one list of results per measure.
    """
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(rounds):
        for measure, into in zip(measures, results):
            into.append(measure())
    return results


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Pairwise ``n / d`` (skipping pairs with a zero denominator)."""
    return [n / d for n, d in zip(numerators, denominators) if d > 0]


def pooled_ratio(numerators: Sequence[tuple[int, float]], denominators: Sequence[tuple[int, float]],
                 blocks: int = 5) -> Summary:
    """Steps per second over all of one side's (steps, seconds) windows ÷ the same over the
    other's; the spread is the same ratio over each of ``blocks`` consecutive runs of pairs.

    Pooled rather than a median of pairs: a cost that comes in bursts (a validation every few
    seconds) lands in a few windows, and the median would leave it out. Spread over blocks,
    not over single pairs: a short window holds a capture or not, which says nothing.
    """
    pairs = [(n, d) for n, d in zip(numerators, denominators) if n[1] > 0 and d[1] > 0 and d[0] > 0]

    def pooled(chunk: Sequence[tuple[tuple[int, float], tuple[int, float]]]) -> float:
        num = sum(n for (n, _), _ in chunk) / sum(t for (_, t), _ in chunk)
        den = sum(n for _, (n, _) in chunk) / sum(t for _, (_, t) in chunk)
        return num / den

    if not pairs:
        return Summary.of([])
    size = max(1, len(pairs) // max(1, blocks))
    parts = [pooled(pairs[i : i + size]) for i in range(0, len(pairs) - size + 1, size)]
    return Summary(pooled(pairs), min(parts), max(parts), len(pairs))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not len(values):
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def timed_repeats(call: Callable[[], object], repeats: int, device: torch.device, warmup: int = 1) -> list[float]:
    """Milliseconds of each of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux: current, from /proc; elsewhere: peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class Threads:
    """Set the calling thread's torch CPU thread count; restores the old count on exit."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._old = 0

    def __enter__(self) -> Threads:
        self._old = torch.get_num_threads()
        torch.set_num_threads(self.count)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._old)
