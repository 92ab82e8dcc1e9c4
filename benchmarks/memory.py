"""``rss_growth_mb``: resident memory growth of a long headless run with capture on
(MLP on spiral), between step 1,000 and step 100,000 (20,000 with ``--quick``); on CUDA
also the growth of allocated device memory (``cuda_mem_growth_mb``)."""
from __future__ import annotations

import gc
import time

import torch

from benchmarks.loops import CapturedLoop
from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Threads, rss_mb, synchronize
from benchmarks.workloads import MLP_SPIRAL, Workload, run_each

KEYS = ("rss_growth_mb", "cuda_mem_growth_mb")
FIRST_READING = 1_000


def reading(device: torch.device) -> tuple[float, float]:
    """(RSS MiB, allocated CUDA MiB or NaN) after collecting garbage."""
    synchronize(device)
    gc.collect()
    cuda = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return rss_mb(), cuda


def measure(workload: Workload, opts: Options) -> list[Result]:
    from visualizer.stream.history import RunHistory

    with Threads(opts.threads):
        history = RunHistory()  # what the window keeps of the frames, in fixed memory
        loop = CapturedLoop(workload.build(opts.device), consume=history.ingest)
        for _ in range(FIRST_READING):
            loop.step()
        rss0, cuda0 = reading(opts.device)
        middle = (FIRST_READING + opts.rss_steps) // 2
        start = time.perf_counter()
        for _ in range(middle - FIRST_READING):
            loop.step()
        rss_mid, _ = reading(opts.device)
        for _ in range(opts.rss_steps - middle):
            loop.step()
        rss1, cuda1 = reading(opts.device)
        seconds = time.perf_counter() - start
    span = f"steps {FIRST_READING:,}→{opts.rss_steps:,}" + (" (QUICK; full: 100,000)" if opts.quick else "")
    # A leak grows in both halves; allocator warm-up shows in the first half only.
    note = (f"{span}: {rss0:.0f}→{rss_mid:.0f}→{rss1:.0f} MiB (halves {rss_mid - rss0:+.0f}/{rss1 - rss_mid:+.0f}); "
            f"{loop.session.captures} frames, {(opts.rss_steps - FIRST_READING) / seconds:.0f} steps/s")
    extra = {"steps": [FIRST_READING, middle, opts.rss_steps], "rss_mb": [round(rss0, 1), round(rss_mid, 1), round(rss1, 1)]}
    results = [Result("rss_growth_mb", workload.key, rss1 - rss0, opts.device_type, opts.threads, note=note, extra=extra)]
    if opts.device_type == "cuda":
        results.append(Result("cuda_mem_growth_mb", workload.key, cuda1 - cuda0, opts.device_type, opts.threads,
                              note=f"{span}, allocated {cuda0:.1f}→{cuda1:.1f} MiB"))
    return results


def run(opts: Options) -> list[Result]:
    keys = KEYS if opts.device_type == "cuda" else KEYS[:1]
    return run_each("memory", keys, opts, lambda w: measure(w, opts), workloads=(MLP_SPIRAL,))
