"""Measure visualizer against its performance targets and print a table (figures, never
assertions); ``--json`` ends the output with one JSON object of every figure."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

import torch

from benchmarks import app, attribution, memory, startup, syncs, throughput
from benchmarks.options import Options
from benchmarks.report import Result, as_json, not_available, table
from benchmarks.workloads import WORKLOADS, device_name, resolve_device

# In running order; each has KEYS and run(Options) -> list[Result].
SECTIONS: dict[str, ModuleType] = {
    "syncs": syncs,
    "throughput": throughput,
    "attribution": attribution,
    "memory": memory,
    "app": app,
    "startup": startup,
}


def select(only: str | None) -> list[ModuleType]:
    """The sections that measure the keys (or are named) in a comma-separated list."""
    if not only:
        return list(SECTIONS.values())
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    known = {key for module in SECTIONS.values() for key in module.KEYS} | set(SECTIONS)
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    return [m for name, m in SECTIONS.items() if name in wanted or wanted & set(m.KEYS)]


def header(opts: Options) -> list[str]:
    lines = [f"device: {device_name(opts.device)}; torch {torch.__version__}; "
             f"trainer threads {opts.threads} of {os.cpu_count()} cores (default_threads)",
             f"workloads: {', '.join(w.key for w in WORKLOADS)} (batch 64)"]
    lines.append(f"interleaved A/B pairs of windows per ratio. Capture and unarmed ratios: {opts.ratio_pairs} pairs of "
                 f"{opts.ratio_window_s:g} s, value = steps/s pooled over each side's windows, spread = the same over "
                 "each fifth of the pairs (the captured loop's cadence clock runs only in its own windows). App and "
                 f"attribution refresh: {opts.pairs} pairs of {opts.app_window_s:g} s or more, value = median of the "
                 "pair ratios, spread = their min–max. Stall and latency: value over all playing windows, spread = "
                 "range of the per-window figure")
    if opts.quick:
        lines.append(f"QUICK mode: shorter windows and fewer pairs (full: 60 pairs of 0.5 s for the capture ratio, 5 of "
                     f"3 s in the app), memory to step "
                     f"{opts.rss_steps:,} (full: 100,000), {opts.repeats} repeats (full: 7)")
    return lines


def context(opts: Options, results: Sequence[Result]) -> dict[str, object]:
    best = {r.workload: r.threads for r in results if r.key == "bare_steps_s_best" and r.value is not None}
    return {
        "device": device_name(opts.device),
        "device_type": opts.device_type,
        "torch": torch.__version__,
        "threads": {"trainer": opts.threads, "cpu_count": os.cpu_count(), "best_bare": best},
        "quick": opts.quick,
        "windows": {"pairs": opts.pairs, "seconds": opts.window_s, "ratio_pairs": opts.ratio_pairs,
                    "ratio_seconds": opts.ratio_window_s, "app_seconds": opts.app_window_s},
        "rss_steps": opts.rss_steps,
    }


def run_section(module: ModuleType, opts: Options) -> list[Result]:
    """A section's results; if it breaks, one row per key saying how (the others still run)."""
    try:
        return module.run(opts)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        note = f"failed: {type(exc).__name__}: {exc}"[:160]
        return [not_available(key, "", note, opts.device_type) for key in module.KEYS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows and counts (about 1-2 minutes)")
    parser.add_argument("--only", metavar="KEY[,KEY]", help="measure only these keys (or sections: "
                        + ", ".join(SECTIONS) + ")")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--ratio-pairs", type=int, metavar="N",
                        help="interleaved pairs for the capture and unarmed ratios (default 60, 8 with --quick)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object of every figure")
    args = parser.parse_args(argv)
    try:
        sections = select(args.only)
        if args.ratio_pairs is not None and not 1 <= args.ratio_pairs <= 1000:
            raise ValueError("--ratio-pairs must be between 1 and 1000")
        opts = Options(resolve_device(args.device), quick=args.quick, ratio_pairs_set=args.ratio_pairs)
    except ValueError as exc:
        parser.error(str(exc))
    results: list[Result] = []
    for module in sections:
        results += run_section(module, opts)
    print(table(results, header(opts)), flush=True)
    if args.json:
        print(as_json(results, context(opts, results)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
