"""Token ids shown as the dataset's symbols (``RunInfo.tokens``), shared by the sequence views."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def token_symbols(tokens: Sequence[str] | None, ids: Any) -> list[str]:
    """The symbol of each token id in ``ids``; ``#id`` where the run has no symbol for it."""
    tokens = list(tokens or [])
    return [tokens[t] if 0 <= t < len(tokens) else f"#{t}" for t in np.asarray(ids).astype(np.int64).ravel()]
