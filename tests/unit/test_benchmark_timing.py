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


def test_pooled_ratio_weights_windows_by_their_time_and_spreads_over_blocks_of_pairs():
    captured = [(90, 1.0), (90, 1.0), (45, 1.0), (90, 1.0)]  # a burst (a validation) in the third window
    bare = [(100, 1.0)] * 4
    summary = pooled_ratio(captured, bare, blocks=2)
    assert summary.value == pytest.approx(315 / 400)  # the median of the pairs (0.9) would hide the burst
    assert (summary.low, summary.high, summary.n) == (pytest.approx(0.675), pytest.approx(0.9), 4)  # per 2 pairs
    assert pooled_ratio([(100, 2.0), (50, 1.0)], [(100, 1.0), (100, 1.0)]).value == pytest.approx(0.5)  # by time
    assert pooled_ratio([], []).n == 0
