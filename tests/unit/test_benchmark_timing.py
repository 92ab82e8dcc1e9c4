"""The benchmarks' measuring helpers: the stopped clock and the pooled ratio."""
import pytest

from benchmarks import timing
from benchmarks.timing import Stopwatch, pooled_ratio


def test_stopwatch_runs_only_inside_its_blocks(monkeypatch):
    now = [10.0]
    monkeypatch.setattr(timing.time, "monotonic", lambda: now[0])
    watch = Stopwatch()
    now[0] += 5.0  # outside: not counted
    assert watch() == 0.0
    with watch:
        now[0] += 2.0
        assert watch() == 2.0
    now[0] += 100.0
    with watch:
        now[0] += 0.5
    assert watch() == 2.5


def test_pooled_ratio_weights_windows_by_their_time_and_spreads_over_pairs():
    captured = [(90, 1.0), (50, 1.0), (95, 1.0)]  # a burst (a validation) in the second window
    bare = [(100, 1.0), (100, 1.0), (100, 1.0)]
    summary = pooled_ratio(captured, bare)
    assert summary.value == pytest.approx(235 / 300)  # the median of pairs (0.9) would hide the burst
    assert (summary.low, summary.high, summary.n) == (pytest.approx(0.5), pytest.approx(0.95), 3)
    assert pooled_ratio([(10, 2.0)], [(10, 1.0)]).value == pytest.approx(0.5)
