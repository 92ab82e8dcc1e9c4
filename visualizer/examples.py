"""The shipped example models (``resources/examples``), found wherever the app is installed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

EXAMPLES_ENV = "VISUALIZER_EXAMPLES"


def examples_dir() -> Path | None:
    """The folder of example models: ``$VISUALIZER_EXAMPLES``, ``resources/examples`` of a source
    checkout or editable install, or ``<prefix>/share/visualizer/examples`` of a wheel install."""
    candidates = [os.environ.get(EXAMPLES_ENV)]
    candidates.append(str(Path(__file__).resolve().parents[1] / "resources" / "examples"))
    candidates += [str(Path(prefix) / "share" / "visualizer" / "examples") for prefix in (sys.prefix, sys.base_prefix)]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def example_models() -> dict[str, Path]:
    """Example name (the file's stem, e.g. ``cnn-shapes``) -> checkpoint path, sorted by name."""
    folder = examples_dir()
    if folder is None:
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))}
