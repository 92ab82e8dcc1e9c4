"""The benchmarks' measuring helpers: the stopped clock, the pooled ratio, the painted latency."""
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


def test_painted_latency_waits_for_the_whole_cascade_of_paints_after_the_render():
    now = [100.0]
    screen = timing.PaintedLatency(quiet_s=0.015, clock=lambda: now[0])
    screen.painted()  # a paint before anything was rendered: not this frame's
    now[0] = 100.050
    screen.rendered(capture_time=100.0)
    assert screen.poll() is None  # rendered, nothing painted since
    for t in (100.060, 100.064, 100.070):  # three passes, one after another
        now[0] = t
        screen.painted()
        now[0] = t + 0.005
        assert screen.poll() is None  # still inside the cascade
    now[0] = 100.084
    assert screen.poll() is None
    now[0] = 100.086  # 16 ms quiet: the frame is on screen since its last paint
    assert screen.poll() == pytest.approx(70.0)
    assert screen.poll() is None  # reported once
    now[0] = 101.0
    screen.rendered(capture_time=100.9)
    now[0] = 101.1
    screen.rendered(capture_time=101.05)  # the newer frame replaces one never painted
    now[0] = 101.11
    screen.painted()
    now[0] = 101.2
    assert screen.poll() == pytest.approx(60.0)


def test_breakdown_files_every_captured_step_and_its_shares_add_up_to_the_lost_speed():
    from benchmarks.breakdown import KINDS, measure
    from benchmarks.workloads import MLP_SPIRAL

    result = measure(MLP_SPIRAL, 0.3, "cpu", warmup_s=0.2)
    assert set(result.spent) == set(KINDS)
    assert result.steps % result.chunk == 0 and result.steps > 0 and result.spent["plain"][0] > 0
    assert sum(result.share(k) for k in KINDS) == pytest.approx(1 - result.ratio)
    assert "captured loop" in result.text() and "plain" in result.text()
