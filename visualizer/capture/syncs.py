"""Count host synchronisations: the tensor calls that make the host wait for the device."""
from __future__ import annotations

from typing import Any

from torch.overrides import TorchFunctionMode

SYNC_METHODS = frozenset({"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "nonzero"})


class SyncCounter(TorchFunctionMode):
    """A torch function mode that records every call that would synchronise with the host.

    Counts ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``, ``bool()``/``float()``/
    ``int()`` of a tensor, ``nonzero`` and ``.to("cpu")`` of a non-CPU tensor. Use as a
    context manager; ``calls`` lists the method names seen, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in SYNC_METHODS or (name == "to" and _to_host(args, kwargs or {})):
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def _to_host(args: tuple, kwargs: dict) -> bool:
    source = args[0] if args else None
    if getattr(source, "device", None) is None or source.device.type == "cpu":
        return False
    targets = list(args[1:]) + [kwargs.get("device")]
    return any(str(t) == "cpu" for t in targets if t is not None)
