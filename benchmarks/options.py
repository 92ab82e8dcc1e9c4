"""How long and on what the benchmarks run: full or ``--quick``, and the device."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Options:
    """Window lengths and counts shared by every benchmark."""

    device: torch.device
    quick: bool = False
    ratio_pairs_set: int | None = None  # ``--ratio-pairs``: fewer pairs where device time is short

    @property
    def pairs(self) -> int:
        """Interleaved A/B pairs per ratio."""
        return 3 if self.quick else 5

    @property
    def window_s(self) -> float:
        """Seconds per measuring window."""
        return 0.5 if self.quick else 1.0

    @property
    def ratio_pairs(self) -> int:
        """Interleaved pairs for the capture and unarmed ratios. Their ~2 % differences sit inside
        a shared VM's noise, which comes in bursts of seconds: many short pairs spread a burst over
        both sides (two identical bare loops: within 1.0 % in 60 pairs of 0.5 s, 2.8 % in 10 of 3 s)."""
        if self.ratio_pairs_set is not None:
            return self.ratio_pairs_set
        return 8 if self.quick else 60

    @property
    def ratio_window_s(self) -> float:
        """Seconds per window of those ratios. The captured windows add up to 30 s, longer than the
        slowest validation's spacing (the CNN's: 120 ms every ~18 s, a 0.67 % share, on a 2-core CPU)."""
        return 0.25 if self.quick else 0.5

    @property
    def app_window_s(self) -> float:
        """Seconds per window in the running app: long enough to show a frame or more even
        when the capture budget spaces them ~2 s apart (the CNN on a 2-core CPU)."""
        return 2.0 if self.quick else 3.0

    @property
    def warmup_s(self) -> float:
        return 0.5 if self.quick else 1.5

    @property
    def rss_steps(self) -> int:
        """The step at which the memory benchmark reads resident memory the second time."""
        return 20_000 if self.quick else 100_000

    @property
    def repeats(self) -> int:
        """Repetitions of one-shot timings (attribution)."""
        return 3 if self.quick else 7

    @property
    def device_type(self) -> str:
        return self.device.type

    @property
    def threads(self) -> int:
        """The app trainer's thread count: all cores but one."""
        from visualizer.capture.session import default_threads

        return default_threads()

    def log(self, message: str) -> None:
        """Progress, on stderr so stdout carries only the table (and the JSON line)."""
        print(message, file=sys.stderr, flush=True)
