"""Damaged inputs for loader tests: truncated, bit-flipped, random and empty files, and
JSON of the wrong shape. Every loader should answer each with one clear error, or load
something valid, and never crash.

    for label, data in file_corruptions(good_bytes):
        path.write_bytes(data)
        outcome = expect_clean_failure(lambda: load(path), MyError)
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any


def file_corruptions(data: bytes, seed: int = 0, flips: int = 6) -> Iterator[tuple[str, bytes]]:
    """(label, damaged bytes) cases made from a good file's ``data``."""
    rng = random.Random(seed)
    n = len(data)
    yield "empty", b""
    yield "one byte", data[:1]
    for frac in (0.1, 0.5, 0.9):
        yield f"truncated to {int(frac * 100)} %", data[: max(1, int(n * frac))]
    yield "last byte missing", data[:-1]
    for i in range(flips):
        pos = rng.randrange(n) if i else min(n - 1, 3)  # one flip always lands in the header
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        yield f"bit flip at byte {pos}", bytes(flipped)
    yield "random bytes (same size)", bytes(rng.randrange(256) for _ in range(min(n, 1 << 16)))
    yield "random bytes (short)", bytes(rng.randrange(256) for _ in range(37))
    yield "zeroed header", b"\0" * min(n, 64) + data[64:]
    yield "text", b"hello, I am not the file you are looking for\n"


def json_corruptions(valid: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, JSON text) cases: invalid JSON, wrong top-level types, and each field of ``valid``
    replaced by values of the wrong type."""
    text = json.dumps(valid)
    yield "invalid JSON", text[: len(text) // 2]
    yield "empty text", ""
    for value in ([], "text", None, 42, True, {}):
        yield f"top level {json.dumps(value)}", json.dumps(value)
    for key in valid:
        for bad in (None, [1, 2], "nonsense", -1, {"nested": {"deep": []}}, 1e308):
            if bad == valid[key]:
                continue
            yield f"{key} = {json.dumps(bad)}", json.dumps({**valid, key: bad})
    yield "unknown field", json.dumps({**valid, "surprise": 1})


def expect_clean_failure(load: Callable[[], Any], errors: type[BaseException] | tuple[type[BaseException], ...]) -> str | None:
    """Run ``load``: None if it succeeded, else its error message, which must be one line
    and of an expected type (anything else propagates and fails the test)."""
    try:
        load()
    except errors as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        return message
    return None
