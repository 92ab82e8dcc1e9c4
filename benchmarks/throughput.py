"""``throughput_ratio_capture``: training speed with capture armed at the app's cadence,
against the bare loop, in one thread with no UI; and the bare loop's speed at each thread
count, so the price of leaving a core to the UI is visible."""
from __future__ import annotations

import os
from typing import Any

from benchmarks.bare import BareLoop
from benchmarks.options import Options
from benchmarks.report import Result, not_available
from benchmarks.timing import Summary, Threads, interleave, rate, ratios, run_for
from benchmarks.workloads import WORKLOADS, Workload

KEYS = ("throughput_ratio_capture", "bare_steps_s", "bare_steps_s_best")


class CapturedLoop:
    """The app's loop without the window: arm before every step (as the display timer does)
    and take each frame from the mailbox as it comes; counts steps and frames."""

    def __init__(self, trainer: Any) -> None:
        from visualizer.capture.session import TrainingSession

        self.session = TrainingSession(trainer)  # default CaptureSettings
        self.frames = 0

    def step(self) -> None:
        self.session.arm()
        self.session.step()
        if self.session.mailbox.take("train") is not None:
            self.frames += 1


def thread_counts(quick: bool) -> list[int]:
    """1..cpu_count; in quick mode on big machines only powers of two, the default and the maximum."""
    from visualizer.capture.session import default_threads

    cores = os.cpu_count() or 1
    if not quick or cores <= 4:
        return list(range(1, cores + 1))
    return sorted({*(2**i for i in range(cores.bit_length()) if 2**i <= cores), default_threads(), cores})


def measure(workload: Workload, opts: Options) -> list[Result]:
    dev, threads = opts.device_type, opts.threads
    with Threads(threads):
        trainer = workload.build(opts.device)
        bare = BareLoop(trainer)  # copied before the captured run trains the model
        captured = CapturedLoop(trainer)
        for loop in (bare, captured):  # first steps and first captures are slow (allocations, lazy init)
            run_for(loop.step, opts.warmup_s, opts.device)
        frames, steps, seconds = 0, 0, 0.0

        def capture_window() -> float:
            nonlocal frames, steps, seconds
            before = captured.frames
            n, elapsed = run_for(captured.step, opts.window_s, opts.device)
            frames, steps, seconds = frames + captured.frames - before, steps + n, seconds + elapsed
            return n / elapsed

        bare_rates, capture_rates = interleave(lambda: rate(bare.step, opts.window_s, opts.device), capture_window,
                                               opts.pairs)
    fps = frames / seconds if seconds else float("nan")
    per_frame = steps / frames if frames else float("nan")
    note = f"{fps:.1f} frames/s, {per_frame:.1f} steps/frame" if frames else "no frame captured"
    ratio = Result.summarised("throughput_ratio_capture", workload.key, Summary.of(ratios(capture_rates, bare_rates)),
                              dev, threads, note, capture_fps=fps, steps_per_frame=per_frame,
                              capture_steps_s=Summary.of(capture_rates).median)
    bare_summary = Summary.of(bare_rates)
    results = [ratio, Result.summarised("bare_steps_s", workload.key, bare_summary, dev, threads, "bare loop, app threads")]

    sweep: dict[int, float] = {}
    for count in thread_counts(opts.quick):
        with Threads(count):
            run_for(bare.step, min(0.2, opts.window_s), opts.device)
            sweep[count] = max(rate(bare.step, opts.window_s, opts.device) for _ in range(2 if opts.quick else 3))
    best = max(sweep, key=sweep.__getitem__)
    share = bare_summary.median / sweep[best] if sweep[best] else float("nan")
    detail = ", ".join(f"{k}: {v:.0f}" for k, v in sweep.items())
    results.append(Result("bare_steps_s_best", workload.key, sweep[best], dev, best,
                          note=f"steps/s by threads {detail}; the app's {threads} reach {share:.0%} of best",
                          extra={"by_threads": {str(k): round(v, 1) for k, v in sweep.items()}}))
    return results


def run(opts: Options) -> list[Result]:
    results: list[Result] = []
    for workload in WORKLOADS:
        reason = workload.missing()
        if reason:
            results += [not_available(key, workload.key, reason, opts.device_type) for key in KEYS]
            continue
        opts.log(f"throughput: {workload.key}")
        results += measure(workload, opts)
    return results
