"""The dock panels, one module each; ``panel_classes`` gives them in View-menu order."""
from __future__ import annotations

import importlib

from visualizer.ui.panels.base import AnalysisPanel, Panel, PanelContext

# (module, class): the order of the View menu
PANEL_MODULES = [
    ("setup", "SetupPanel"),
    ("layers", "LayersPanel"),
    ("samples", "SamplesPanel"),
    ("activations", "ActivationsPanel"),
    ("filters", "FiltersPanel"),
    ("gradients", "GradientsPanel"),
    ("metrics", "MetricsPanel"),
    ("plane", "PlanePanel"),
    ("probes", "LayerProbesPanel"),
    ("representations", "RepresentationsPanel"),
    ("top_examples", "TopExamplesPanel"),
    ("features", "FeatureVisPanel"),
    ("selectivity", "SelectivityPanel"),
    ("attention", "AttentionPanel"),
    ("recurrent", "RecurrentPanel"),
    ("inspect_input", "InspectInputPanel"),
    ("drawing", "DrawingPanel"),
    ("finetune", "FineTunePanel"),
    ("attribution", "AttributionPanel"),
]


def panel_classes() -> list[type[Panel]]:
    """Every panel class, imported on first use."""
    return [getattr(importlib.import_module(f"visualizer.ui.panels.{module}"), name) for module, name in PANEL_MODULES]


__all__ = ["AnalysisPanel", "Panel", "PanelContext", "panel_classes"]
