"""Figures, their targets, and the two ways of printing them: a table and one JSON line."""
from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.timing import Summary


@dataclass(frozen=True)
class Target:
    """A bound on a figure: ``op`` is "<=", ">=" or "=="; per device kind (None: no target)."""

    op: str
    cpu: float | None
    gpu: float | None

    def bound(self, device_type: str) -> float | None:
        return self.gpu if device_type == "cuda" else self.cpu

    def met(self, value: float, device_type: str) -> bool | None:
        bound = self.bound(device_type)
        if bound is None or value is None or math.isnan(value):
            return None
        compare: Callable[[float, float], bool] = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}[self.op]
        return compare(value, bound)

    def text(self, device_type: str) -> str:
        bound = self.bound(device_type)
        return "—" if bound is None else f"{self.op.replace('==', '=')} {bound:g}"


# From the issue: on a 2-core CPU / on a GPU.
TARGETS: dict[str, Target] = {
    "throughput_ratio_capture": Target(">=", 0.95, 0.95),
    "throughput_ratio_app": Target(">=", 0.80, 0.90),
    "ui_stall_p99_ms": Target("<=", 33, 33),
    "ui_stall_max_ms": Target("<=", 100, 100),
    "latency_p50_ms": Target("<=", 100, 100),
    "latency_p95_ms": Target("<=", 250, 250),
    "rss_growth_mb": Target("<=", 50, 50),
    "cuda_mem_growth_mb": Target("<=", None, 1),  # "CUDA memory flat"
    "gradcam_ms": Target("<=", 300, 50),
    "ig32_ms": Target("<=", 3000, 500),
    "startup_s": Target("<=", 3, None),
    "syncs_unarmed": Target("==", 0, 0),
}


@dataclass
class Result:
    """One figure: ``value`` (None when it could not be measured) and the range it came from."""

    key: str
    workload: str  # "" for figures that are not per workload
    value: float | None
    device: str  # "cpu" or "cuda"
    threads: int | None
    spread: tuple[float, float] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def summarised(cls, key: str, workload: str, summary: Summary, device: str, threads: int | None,
                   note: str = "", **extra: Any) -> Result:
        """A figure from repeats (the summary's median or pooled value), with its low-high as the spread."""
        spread = (summary.low, summary.high) if summary.n > 1 else None
        return cls(key, workload, summary.value if summary.n else None, device, threads, spread, note, extra)

    @property
    def target(self) -> Target | None:
        return TARGETS.get(self.key)

    @property
    def passed(self) -> bool | None:
        return None if self.target is None or self.value is None else self.target.met(self.value, self.device)

    def marker(self) -> str:
        return {True: "ok", False: "MISS", None: ""}[self.passed]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": _finite(self.value),
            "min": _finite(self.spread[0]) if self.spread else None,
            "max": _finite(self.spread[1]) if self.spread else None,
            "target": self.target.text(self.device) if self.target else None,
            "pass": self.passed,
            "device": self.device,
            "threads": self.threads,
        }
        if self.note:
            out["note"] = self.note
        out.update({k: _finite(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return out


def not_available(key: str, workload: str, reason: str, device: str, threads: int | None = None) -> Result:
    """A placeholder row for a figure that cannot be measured yet (e.g. a missing model)."""
    return Result(key, workload, None, device, threads, note=reason)


def fmt(value: float | None) -> str:
    """A number with about three significant digits (ints as ints)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(results: Sequence[Result], header: Sequence[str] = ()) -> str:
    """The results as an aligned text table, preceded by ``header`` lines."""
    columns = ("key", "workload", "value", "spread", "target", "", "device", "threads", "notes")
    rows = [
        (
            r.key,
            r.workload or "-",
            fmt(r.value),
            f"{fmt(r.spread[0])}–{fmt(r.spread[1])}" if r.spread else "",
            r.target.text(r.device) if r.target else "",
            r.marker(),
            r.device,
            "" if r.threads is None else str(r.threads),
            r.note,
        )
        for r in results
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = list(header)
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def as_json(results: Sequence[Result], context: dict[str, Any]) -> str:
    """One JSON object: ``context`` (device, threads, ...) and, per key, the figure or a
    ``{workload: figure}`` mapping for per-workload keys."""
    out: dict[str, Any] = dict(context)
    for r in results:
        entry = r.as_json()
        if r.workload:
            out.setdefault(r.key, {})[r.workload] = entry
        else:
            out[r.key] = entry
    return json.dumps(out, separators=(",", ":"))


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
