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
        """Interleaved pairs for the capture and unarmed ratios: their ~2 % differences sit inside
        a shared VM's window-to-window noise (±5 % over 3 s), so they get twice the pairs."""
        return 3 if self.quick else 10

    @property
    def ratio_window_s(self) -> float:
        """Seconds per window of the capture ratio: its captured windows add up to a few of the
        slowest validation's spacing (the CNN's: ~12 s at a 1 % share on a 2-core CPU)."""
        return 0.5 if self.quick else 3.0

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
