"""Token symbols typed by a person, turned into ids (plain Python: the window's process uses it
without importing torch)."""
from __future__ import annotations

SHOWN = {" ": "\u2423", "\n": "\u21b5"}  # space and newline made visible


def encode(dataset_tokens: list[str], text_in: str) -> list[int]:
    """Token ids for ``text_in`` typed by a person, symbol by symbol, or ValueError naming the first unknown one.

    Symbols are single characters; spaces separate them when every symbol is one
    character and the text has spaces only as separators (``"3 1 2"`` or ``"312"``).
    """
    index = {s: i for i, s in enumerate(dataset_tokens)}
    for raw, shown in SHOWN.items():
        if shown in index:
            index.setdefault(raw, index[shown])
    chars = list(text_in)
    if " " not in index:
        chars = [c for c in chars if c != " "]
    unknown = [c for c in chars if c not in index]
    if unknown:
        raise ValueError(f"unknown symbol {unknown[0]!r}; this dataset's symbols are: {' '.join(dataset_tokens)}")
    if not chars:
        raise ValueError("type at least one symbol")
    return [index[c] for c in chars]
