"""Token-sequence tasks, generated offline and deterministically from a seed.

Sequence-to-sequence (labels (N, T), one class per position): ``copy``, ``reverse``,
``sort`` and ``text`` (next-character prediction on a small bundled text, causal).
Sequence classification (labels (N,)): ``brackets`` (is the line balanced?);
``parity`` (odd number of ones?) is per position by default (the running parity). Every set carries readable token symbols.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .base import Dataset

DIGITS = [str(d) for d in range(10)] + [chr(ord("A") + k) for k in range(16)]
_TEXT_FILE = Path(__file__).with_name("text.txt")
from visualizer.engine.tokens import SHOWN as _SHOWN, encode  # noqa: F401 (encode re-exported)


def _split(rng: np.random.Generator, make, n_train: int, n_val: int) -> tuple[torch.Tensor, ...]:
    x, y = make(rng, n_train + n_val)
    x, y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _seq2seq(name: str, transform, n_train: int, n_val: int, seq_len: int, vocab: int, seed: int) -> Dataset:
    params = {"n_train": n_train, "n_val": n_val, "seq_len": seq_len, "vocab": vocab, "seed": seed}

    def make(rng: np.random.Generator, n: int):
        x = rng.integers(0, vocab, size=(n, seq_len), dtype=np.int64)
        return x, transform(x)

    x_train, y_train, x_val, y_val = _split(np.random.default_rng(seed), make, n_train, n_val)
    symbols = DIGITS[:vocab]
    return Dataset(name, "sequence", x_train, y_train, x_val, y_val, list(symbols), params, tokens=list(symbols))


def copy(n_train: int = 8000, n_val: int = 1000, seq_len: int = 8, vocab: int = 10, seed: int = 0) -> Dataset:
    """Output the input sequence unchanged, position by position."""
    return _seq2seq("copy", lambda x: x.copy(), n_train, n_val, seq_len, vocab, seed)


def reverse(n_train: int = 8000, n_val: int = 1000, seq_len: int = 8, vocab: int = 10, seed: int = 0) -> Dataset:
    """Output the input sequence backwards: position t gets token T-1-t."""
    return _seq2seq("reverse", lambda x: x[:, ::-1].copy(), n_train, n_val, seq_len, vocab, seed)


def sort(n_train: int = 8000, n_val: int = 1000, seq_len: int = 8, vocab: int = 10, seed: int = 0) -> Dataset:
    """Output the input tokens in ascending order."""
    return _seq2seq("sort", lambda x: np.sort(x, axis=1), n_train, n_val, seq_len, vocab, seed)


def _balanced(x: np.ndarray) -> np.ndarray:
    """For rows of 0 = "(" and 1 = ")": whether the brackets are balanced."""
    depth = np.cumsum(np.where(x == 0, 1, -1), axis=1)
    return (depth.min(axis=1) >= 0) & (depth[:, -1] == 0)


def brackets(n_train: int = 8000, n_val: int = 1000, seq_len: int = 12, seed: int = 0) -> Dataset:
    """Lines of "(" and ")": balanced (class 1) or not (class 0), half each.

    Half of the unbalanced lines have as many "(" as ")" and fail only on the order,
    so counting alone does not solve the task.
    """
    if seq_len % 2:
        raise ValueError(f"brackets needs an even seq_len, got {seq_len}")
    params = {"n_train": n_train, "n_val": n_val, "seq_len": seq_len, "seed": seed}

    def make(rng: np.random.Generator, n: int):
        n_pos = n // 2
        n_hard = (n - n_pos) // 2
        n_soft = n - n_pos - n_hard
        pos, hard = [], []
        half = np.repeat(np.array([[0, 1]], dtype=np.int64), seq_len // 2, axis=0).reshape(1, -1)
        while sum(len(p) for p in pos) < n_pos or sum(len(h) for h in hard) < n_hard:
            rows = rng.permuted(np.repeat(half, 4 * max(n_pos, 64), axis=0), axis=1)
            ok = _balanced(rows)
            pos.append(rows[ok])
            hard.append(rows[~ok])
        soft = rng.integers(0, 2, size=(4 * n_soft + 64, seq_len), dtype=np.int64)
        soft = soft[soft.sum(1) * 2 != seq_len][:n_soft]
        while len(soft) < n_soft:  # tiny seq_len: few unequal lines per draw
            more = rng.integers(0, 2, size=(64, seq_len), dtype=np.int64)
            soft = np.concatenate([soft, more[more.sum(1) * 2 != seq_len]])[:n_soft]
        x = np.concatenate([np.concatenate(pos)[:n_pos], np.concatenate(hard)[:n_hard], soft])
        y = _balanced(x).astype(np.int64)
        order = rng.permutation(n)
        return x[order], y[order]

    x_train, y_train, x_val, y_val = _split(np.random.default_rng(seed), make, n_train, n_val)
    return Dataset("brackets", "sequence", x_train, y_train, x_val, y_val, ["unbalanced", "balanced"], params,
                   tokens=["(", ")"])


def parity(n_train: int = 8000, n_val: int = 1000, seq_len: int = 16, running: bool = True, seed: int = 0) -> Dataset:
    """Bit strings and their parity (class 1 = odd number of ones).

    ``running`` (default): one label per position, the parity of the bits read so far, so the
    last label is the whole string's parity; a recurrent model learns it as a flip-flop in a few
    hundred steps, and with 16 bits most validation strings were never seen in training.
    ``running=False``: one label per string. Gradient descent then gets no signal until every
    bit is used at once: an LSTM learns it up to about 5 bits (32 strings, all memorised) and
    stays at chance from 6 bits on within thousands of steps.
    """
    if not isinstance(running, bool):
        raise ValueError(f"running must be true or false, got {running!r}")
    params = {"n_train": n_train, "n_val": n_val, "seq_len": seq_len, "running": running, "seed": seed}

    def make(rng: np.random.Generator, n: int):
        x = rng.integers(0, 2, size=(n, seq_len), dtype=np.int64)
        return x, (np.cumsum(x, 1) % 2 if running else x.sum(1) % 2)

    x_train, y_train, x_val, y_val = _split(np.random.default_rng(seed), make, n_train, n_val)
    return Dataset("parity", "sequence", x_train, y_train, x_val, y_val, ["even", "odd"], params, tokens=["0", "1"])


@functools.lru_cache(maxsize=1)
def bundled_text() -> str:
    """The small text written for the project (lower case), read from the package."""
    return _TEXT_FILE.read_text(encoding="utf-8").lower()


def text(n_train: int = 8000, n_val: int = 1000, seq_len: int = 32, seed: int = 0) -> Dataset:
    """Next-character prediction on the bundled text: label t is character t + 1 (causal).

    Training windows come from the first 85 % of the text, validation windows from the rest.
    """
    params = {"n_train": n_train, "n_val": n_val, "seq_len": seq_len, "seed": seed}
    body = bundled_text()
    chars = sorted(set(body))
    ids = np.array([chars.index(c) for c in body], dtype=np.int64)
    cut = int(len(ids) * 0.85)
    if cut - seq_len - 1 < 1 or len(ids) - cut - seq_len - 1 < 1:
        raise ValueError(f"seq_len {seq_len} is too long for the bundled text ({len(ids)} characters)")
    rng = np.random.default_rng(seed)

    def windows(lo: int, hi: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = rng.integers(lo, hi - seq_len - 1, size=n)
        w = ids[starts[:, None] + np.arange(seq_len + 1)]
        return torch.from_numpy(w[:, :-1].copy()), torch.from_numpy(w[:, 1:].copy())

    x_train, y_train = windows(0, cut, n_train)
    x_val, y_val = windows(cut, len(ids), n_val)
    symbols = [_SHOWN.get(c, c) for c in chars]
    return Dataset("text", "sequence", x_train, y_train, x_val, y_val, list(symbols), params,
                   tokens=list(symbols), causal=True)
