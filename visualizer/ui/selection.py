"""The one shared selection every panel reads and writes (what "linked" means)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

FIELDS = ("layer", "channel", "sample", "head", "target", "step")


class Selection(QObject):
    """Layer, channel/unit, probe sample, attention head, target class and step.

    ``set`` changes any number of fields and emits ``changed`` once with the names of
    the fields that really changed, so a burst of updates redraws once. Panels never
    talk to each other; they only read and write this.
    """

    changed = Signal(frozenset)

    def __init__(self) -> None:
        super().__init__()
        self._values: dict[str, Any] = {f: None for f in FIELDS}
        self._values["sample"] = 0

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(name)

    def set(self, **changes: Any) -> None:
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise KeyError(f"unknown selection field(s): {', '.join(sorted(unknown))}")
        if "layer" in changes and changes["layer"] != self._values["layer"] and "channel" not in changes:
            changes["channel"] = None  # a channel index means nothing in another layer
        done = frozenset(k for k, v in changes.items() if self._values[k] != v)
        for k in done:
            self._values[k] = changes[k]
        if done:
            self.changed.emit(done)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._values)
