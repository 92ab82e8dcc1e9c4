"""Readable one-line messages for exceptions raised while training or analysing."""
from __future__ import annotations

MAX_CHARS = 300


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 1] + "…"


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower())


def explain(exc: BaseException, what: str) -> str:
    """A message for a person: what failed (``what``, e.g. "Training step 12"), why, what to do."""
    if is_out_of_memory(exc) or isinstance(exc, MemoryError):
        free_cached_memory()
        return (f"{what} ran out of memory ({_first_line(exc)}). Lower the batch size or the model's size "
                "(width, depth, channels), or train on the CPU; then press Play again.")
    text = str(exc)
    if isinstance(exc, RuntimeError) and any(k in text for k in ("shape", "size mismatch", "mat1 and mat2", "must match")):
        return (f"{what} failed: the model could not process the batch ({_first_line(exc)}). "
                "Check that the model's layers fit the data's input shape and number of classes.")
    return f"{what} failed: {type(exc).__name__}: {_first_line(exc)}"


def free_cached_memory() -> None:
    """Give cached GPU memory back after an out-of-memory error, so a smaller setting can run."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
