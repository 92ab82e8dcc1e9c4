"""``throughput_ratio_capture``: training speed with capture armed at the app's cadence,
against the bare loop, in one thread with no UI. Beside it: the same session never armed
(``throughput_ratio_unarmed``: what the trainer itself costs per step), and the bare loop's
speed at each thread count, so the price of leaving a core to the UI is visible."""
from __future__ import annotations

import os
from collections.abc import Callable

from benchmarks.loops import BareLoop, CapturedLoop
from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Stopwatch, Summary, Threads, interleave, pooled_ratio, rate, run_for
from benchmarks.workloads import Workload, run_each

KEYS = ("throughput_ratio_capture", "throughput_ratio_unarmed", "bare_steps_s", "bare_steps_s_best")


def thread_counts(quick: bool) -> list[int]:
    """1..cpu_count; on big machines (and in quick mode above 4 cores) only powers of two, the
    default and the maximum: every count of 16 cores would take most of the run."""
    from visualizer.capture.session import default_threads

    cores = os.cpu_count() or 1
    if cores <= 4 or (cores <= 8 and not quick):
        return list(range(1, cores + 1))
    return sorted({*(2**i for i in range(cores.bit_length()) if 2**i <= cores), default_threads(), cores})


def thread_sweep(bare: BareLoop, opts: Options) -> dict[int, float]:
    """The bare loop's best steps/s at each thread count, counts taken round-robin."""
    counts = thread_counts(opts.quick)
    for count in counts:
        with Threads(count):
            run_for(bare.step, min(0.2, opts.window_s), opts.device)

    def at(count: int) -> Callable[[], float]:
        def measure() -> float:
            with Threads(count):
                return rate(bare.step, opts.window_s, opts.device)

        return measure

    by_count = interleave([at(c) for c in counts], 2 if opts.quick else 3)
    return {c: max(rates) for c, rates in zip(counts, by_count)}  # interference only ever slows a window


def measure(workload: Workload, opts: Options) -> list[Result]:
    dev, threads = opts.device_type, opts.threads
    with Threads(threads):
        trainer = workload.build(opts.device)
        bare = BareLoop(trainer)  # copied before the captured run trains the model
        # The captured loop's cadence counts only its own windows' time, as in one long run: on
        # the wall clock, the other loops' windows in between would look like idle time, and
        # every capture window would open with a capture and a validation already due.
        watch = Stopwatch()
        captured = CapturedLoop(trainer, clock=watch)
        run_for(bare.step, opts.warmup_s, opts.device)  # first steps and captures are slow (allocations, lazy init)
        with watch:
            run_for(captured.step, opts.warmup_s, opts.device)
        frames = 0
        window = opts.ratio_window_s

        def capture_window() -> tuple[int, float]:
            nonlocal frames
            before = captured.frames
            with watch:
                n, elapsed = run_for(captured.step, window, opts.device)
            frames += captured.frames - before
            return n, elapsed

        def unarmed_window() -> tuple[int, float]:
            captured.session.disarm()  # the capture window's last arm may still stand
            return run_for(captured.session.step, window, opts.device)  # never armed: no capture

        bare_runs, unarmed_runs, capture_runs = interleave(
            [lambda: run_for(bare.step, window, opts.device), unarmed_window, capture_window], opts.ratio_pairs)
        sweep = thread_sweep(bare, opts)
    steps, seconds = sum(n for n, _ in capture_runs), sum(t for _, t in capture_runs)
    fps = frames / seconds if seconds else float("nan")
    per_frame = steps / frames if frames else float("nan")
    note = f"{fps:.1f} frames/s, {per_frame:.1f} steps/frame" if frames else "no frame captured"
    bare_summary = Summary.of([n / t for n, t in bare_runs])
    best = max(sweep, key=sweep.__getitem__)
    share = sweep.get(threads, float("nan")) / sweep[best] if sweep[best] else float("nan")
    detail = ", ".join(f"{k}: {v:.0f}" for k, v in sweep.items())
    return [
        Result.summarised("throughput_ratio_capture", workload.key, pooled_ratio(capture_runs, bare_runs),
                          dev, threads, note, capture_fps=fps, steps_per_frame=per_frame,
                          capture_steps_s=steps / seconds if seconds else float("nan")),
        Result.summarised("throughput_ratio_unarmed", workload.key, pooled_ratio(unarmed_runs, bare_runs),
                          dev, threads, "session never armed ÷ bare: the trainer's own per-step cost"),
        Result.summarised("bare_steps_s", workload.key, bare_summary, dev, threads, "bare loop, the app's threads"),
        Result("bare_steps_s_best", workload.key, sweep[best], dev, best,
               note=f"steps/s by threads {detail}; the app's {threads} reach {share:.0%} of best",
               extra={"by_threads": {str(k): round(v, 1) for k, v in sweep.items()}}),
    ]


def run(opts: Options) -> list[Result]:
    return run_each("throughput", KEYS, opts, lambda w: measure(w, opts))
