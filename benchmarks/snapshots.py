"""What the rollback snapshots cost: the session loop's uncaptured steps with snapshots every
200 steps (the default) against none, interleaved A/B windows of 400 steps, 1 CPU thread.

    python -m benchmarks.snapshots
"""
import json
import time

import torch

from visualizer.capture.session import CaptureSettings, TrainingSession
from visualizer.engine.run import RunSpec, build_trainer
from visualizer.engine.snapshots import take_snapshot
from visualizer.ui.runner import DEMOS


def make(name, every):
    d = json.loads(json.dumps(DEMOS[name])); d["device"] = "cpu"
    t = build_trainer(RunSpec.from_dict(d))
    return TrainingSession(t, settings=CaptureSettings(snapshot_every=every))


def main() -> None:
    torch.set_num_threads(1)
    for name in ("cnn-shapes", "mlp-spiral"):
        measure(name)


def measure(name: str, pairs: int = 5, steps: int = 400) -> None:
    """Print the with/without throughput ratio (median and range), one snapshot's time and memory kept."""
    with_snapshots, without = make(name, 200), make(name, 10**9)
    with_snapshots.run(50)
    without.run(50)
    ratios = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        with_snapshots.run(steps)
        t_with = time.perf_counter() - t0
        t0 = time.perf_counter()
        without.run(steps)
        ratios.append((time.perf_counter() - t0) / t_with)
    t0 = time.perf_counter()
    for _ in range(20):
        take_snapshot(with_snapshots.trainer)
    snap_ms = (time.perf_counter() - t0) / 20 * 1000
    step_ms = t_with / steps * 1000
    ratios.sort()
    print(f"{name}: throughput with/without snapshots {ratios[len(ratios) // 2]:.3f} (min {ratios[0]:.3f}, "
          f"max {ratios[-1]:.3f}); one snapshot {snap_ms:.2f} ms = {snap_ms / step_ms:.3f} steps of {step_ms:.2f} ms; "
          f"{with_snapshots.snapshots.nbytes / 1e6:.2f} MB kept")


if __name__ == "__main__":
    main()
