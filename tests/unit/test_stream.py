import numpy as np
import pytest

from visualizer.stream import Frame, Mailbox, RingBuffer, ScalarChunk, SeriesBuffer


def chunk(start: int, n: int) -> ScalarChunk:
    steps = np.arange(start, start + n)
    return ScalarChunk(steps, {"train_loss": steps * 0.5})


def test_mailbox_keeps_only_newest_and_counts_drops():
    box = Mailbox()
    for i in range(5):
        box.put("train", Frame(step=i, time=float(i)))
    frame = box.take("train")
    assert frame.step == 4
    assert box.dropped["train"] == 4
    assert box.take("train") is None


def test_mailbox_tells_its_listener_after_each_put_outside_its_lock():
    box, seen = Mailbox(), []
    box.on_put = lambda stream: seen.append((stream, box.take(stream)))  # take() would deadlock inside the lock
    box.put("train", "a")
    box.put("status", "b")
    assert seen == [("train", "a"), ("status", "b")]


def test_dropped_frames_do_not_drop_scalar_history():
    box = Mailbox()
    series = SeriesBuffer(["train_loss"], capacity=1000)
    step = 1
    for round_ in range(6):
        for _ in range(round_ + 1):  # a slow consumer: several frames per take
            box.put("train", Frame(step=step + 9, time=0.0, scalars=chunk(step, 10)))
            step += 10
        f = box.take("train")
        series.extend(f.scalars.steps, f.scalars.values)
    steps, values = series.data()
    assert np.array_equal(steps, np.arange(1, step))
    assert np.allclose(values["train_loss"], steps * 0.5)
    assert box.dropped["train"] == sum(range(6))


def test_val_survives_overwrite():
    box = Mailbox()
    box.put("train", Frame(step=1, time=0.0, val={"val_acc": 0.5, "step": 1}))
    box.put("train", Frame(step=2, time=0.0))
    assert box.take("train").val == {"val_acc": 0.5, "step": 1}


def test_ring_buffer_wraps_and_returns_evicted():
    ring = RingBuffer(4)
    assert len(ring.extend(np.arange(3))) == 0
    evicted = ring.extend(np.arange(3, 7))
    assert list(evicted) == [0, 1, 2]
    assert list(ring.view()) == [3, 4, 5, 6]
    assert list(ring.extend(np.arange(7, 17))) == list(range(3, 13))
    assert list(ring.view()) == [13, 14, 15, 16]
    assert ring.last() == 16


def test_series_buffer_is_bounded_and_coarsens_old_points():
    s = SeriesBuffer(["x"], capacity=100, coarse_factor=10)
    for start in range(0, 100_000, 500):
        steps = np.arange(start, start + 500)
        s.extend(steps, {"x": steps.astype(float)})
    steps, values = s.data()
    assert len(steps) <= 2 * 100 + 10
    assert np.all(np.diff(steps) > 0)
    assert steps[-1] == 99_999 and np.allclose(values["x"], steps)  # means of aligned groups


def test_ring_buffer_rejects_zero_capacity():
    with pytest.raises(ValueError):
        RingBuffer(0)
