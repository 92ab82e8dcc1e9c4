"""Latest-wins mailbox: one slot per stream, overwritten frames are counted as dropped."""
from __future__ import annotations

import threading
from typing import Any, Callable


class Mailbox:
    """Thread-safe slots holding only the newest frame of each stream.

    A frame overwritten before anyone took it is dropped (and counted), never queued.
    If the new frame has an ``absorb(older)`` method it is called first, so data that
    must not be lost (per-step scalars) rides along with the newer frame.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, Any] = {}
        self.posted: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.taken: dict[str, int] = {}
        self.on_put: Callable[[str], None] | None = None  # told the stream name after each put (any thread)

    def put(self, stream: str, frame: Any) -> None:
        with self._lock:
            older = self._slots.get(stream)
            if older is not None:
                self.dropped[stream] = self.dropped.get(stream, 0) + 1
                absorb = getattr(frame, "absorb", None)
                if absorb is not None:
                    absorb(older)
            self._slots[stream] = frame
            self.posted[stream] = self.posted.get(stream, 0) + 1
        if self.on_put is not None:
            self.on_put(stream)

    def take(self, stream: str) -> Any | None:
        """The newest frame of ``stream`` (removing it), or None if nothing new."""
        with self._lock:
            frame = self._slots.pop(stream, None)
            if frame is not None:
                self.taken[stream] = self.taken.get(stream, 0) + 1
            return frame
