"""Token sequences as rich text, each token's background coloured by a signed score in
[-1, 1] through the diverging map (blue negative, white zero, red positive)."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from visualizer.ui.widgets.colormaps import colormap

DIVERGING = "diverging"


def token_cells(tokens: Sequence[str], unit: np.ndarray, peak: int | None = None) -> str:
    """One ``<span>`` per token, its background the colour of its value in ``unit``
    ([-1, 1]); the token at ``peak`` is bold and underlined."""
    v = np.clip(np.nan_to_num(np.asarray(unit, np.float32).reshape(-1)), -1.0, 1.0)
    rgb = colormap(DIVERGING).map((v + 1.0) / 2.0, mode="byte")
    cells = []
    for i, (t, c) in enumerate(zip(tokens, rgb)):
        text = f"&nbsp;{escape(t)}&nbsp;"
        if i == peak:
            text = f"<b><u>{text}</u></b>"
        cells.append(f'<span style="background-color: rgb({c[0]},{c[1]},{c[2]});">{text}</span>')
    return " ".join(cells)


def diverging_key(low: str, high: str) -> str:
    """A three-cell key of the colours: ``low`` at -1, 0 in the middle, ``high`` at +1."""
    return token_cells([low, "0", high], np.array([-1.0, 0.0, 1.0]))
