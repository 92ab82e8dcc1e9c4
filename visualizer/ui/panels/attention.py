"""Attention: every layer's heads as thumbnails for the selected sample; one enlarged with
token symbols on both axes, the value under the mouse and the head's entropy. For a ViT,
the class token's attention and the attention rollout across layers over the image.

It also reads the Inspect input panel's analysis ("inspect"): once a typed sequence has
been run, its maps (every layer and head, the tokenizer's tokens on the axes) are shown
until the weights change or the person picks a probe sample again."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from visualizer.capture.attention_maps import attention_entropy, attention_rollout  # numpy only: no torch in the UI
from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.colormaps import SEQUENTIAL
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid
from visualizer.ui.widgets.token_heatmap import TokenHeatmap

MIN_TILE = 24  # thumbnails are enlarged (nearest neighbour) to at least this many pixels a side
NO_FRAME = "No frame yet: press Play (Space) or Step (→) to capture one."


def attention_layer_for(selected: str | None, layers: list[str]) -> str | None:
    """The attention layer a selected layer belongs to: itself, its parent block's attention
    (``block2.attn.q`` -> ``block2.attn``; ``block2.ff1`` -> ``block2.attn``), or None."""
    if not selected:
        return None
    for name in layers:
        if selected == name or selected.startswith(name + "."):
            return name
    for name in layers:
        parent = name.rsplit(".", 1)[0]
        if "." in name and (selected == parent or selected.startswith(parent + ".")):
            return name
    return None


def overlay(image: np.ndarray, heat: np.ndarray, floor: float = 0.12) -> np.ndarray:
    """An (H, W, 3) image in [0, 1] lit by ``heat`` (h, w): each patch's brightness is its
    attention over the largest one, so the patches attended to stand out and the rest go dark."""
    h, w = image.shape[:2]
    peak = float(heat.max()) if heat.size and heat.max() > 0 else 1.0
    big = np.kron(heat / peak, np.ones((h // heat.shape[0], w // heat.shape[1])))
    return image * (floor + (1 - floor) * big[..., None])


INSPECT = "inspect"  # the Inspect input panel's analysis, read here too


class AttentionPanel(AnalysisPanel):
    """Layers x heads attention thumbnails for the selected probe sample (or the typed
    sequence), one enlarged."""

    title = "Attention"
    key = "attention"
    heavy = True
    analyses = (INSPECT,)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(scale=1.0)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.grid = ImageGrid(cmap=SEQUENTIAL, colorbar=False)
        self.grid.setToolTip("One attention map per head (columns) and layer (rows), queries down, keys across. "
                             "Click one to enlarge it and select its layer and head in every panel.")
        self.grid.tile_clicked.connect(self._tile_clicked)
        self.grid.setMinimumWidth(160)
        self.map = TokenHeatmap(SEQUENTIAL, x_label="key (attended to)", y_label="query (attending)",
                                bar_label="attention weight", value_name="weight", x_angle=45)
        self.cls_view = ImageGrid(colorbar=False)
        self.cls_view.setToolTip("Left: the selected head's attention from the class token to each patch. "
                                 "Right: attention rollout through all layers (heads averaged, residual added).")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.map, 3)
        right_layout.addWidget(self.cls_view, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(right)
        split.setStretchFactor(0, 2)  # the enlarged map gets the larger share as the dock grows
        split.setStretchFactor(1, 3)
        self.split = split
        self.body = Placeholder(split)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.body, 1)
        self._layers: list[str] = []
        self._heads = 0
        self._key: tuple | None = None
        self._typed: dict | None = None  # the last typed sequence's result: tokens, attention, step
        self._typed_sample: int | None = None
        self.body.show_message("No run yet.")

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        self._key = None
        self._typed = None
        self._layers = list(run.attention_layers)
        self.cls_view.setVisible(run.patch_grid is not None)
        if not self._layers:
            self.caption.setText("")
            self.body.show_message(f"{run.model_name} has no attention layers, so there are no attention maps "
                                   "to show. Try a Transformer or ViT run (e.g. the transformer-reverse demo).")
        else:
            self.body.show_message(NO_FRAME)

    def receive(self, update) -> None:
        """Every finished "inspect" job (asked for by the Inspect input panel) is shown here too."""
        if update.state == "done" and isinstance(update.result, dict) and update.result.get("attention"):
            self._typed = {**update.result, "step": (update.tag or {}).get("step")}
            self._typed_sample = self.sample_index()
            self._key = None
            self.render(self.history.latest)

    def _typed_maps(self, frame: Frame | None) -> dict | None:
        """The typed sequence's result while it still describes the weights on show and no other
        probe sample was picked since; else None (and it is dropped)."""
        typed = self._typed
        if typed is None:
            return None
        stale = frame is not None and typed.get("step") is not None and frame.step > typed["step"]
        if stale or self.sample_index() != self._typed_sample:
            self._typed = None
            return None
        return typed

    def selected_head(self) -> tuple[str, int]:
        """The attention layer and head on show: the selection's, else the first."""
        layer = attention_layer_for(self.selection.layer, self._layers) or self._layers[0]
        head = self.selection.head if isinstance(self.selection.head, int) else 0
        return layer, int(np.clip(head, 0, max(0, self._heads - 1)))

    def render(self, frame: Frame | None) -> None:
        if self.run is None or not self._layers:
            return
        typed = self._typed_maps(frame)
        if typed is None and (frame is None or not frame.attention):
            self.body.show_message(NO_FRAME)
            return
        sample = self.sample_index()
        key = (id(frame), id(typed), getattr(frame, "step", None), self.selection.layer, self.selection.head, sample)
        if key == self._key:
            return
        self._key = key
        if typed is not None:
            source = typed["attention"]
            maps = [np.asarray(source[n], np.float32) for n in self._layers if n in source]
            ids = np.asarray(typed["tokens"], np.int64)
            symbols = self._symbols_of(ids)
            what = f"the typed sequence “{' '.join(symbols)}”"
        else:
            maps = [np.asarray(frame.attention[n][sample], np.float32) for n in self._layers if n in frame.attention]
            if self.run.tokenizer:  # padded sample sentences: masked padding keys get no attention, trim them
                keep = max(1, int(np.count_nonzero(maps[0].sum((0, 1)) > 0)))
                maps = [m[:, :keep, :keep] for m in maps]
            symbols = None
            what = f"probe sample {sample} at step {frame.step}"
        self._heads = maps[0].shape[0]
        layer, head = self.selected_head()
        row = self._layers.index(layer)
        stack = np.concatenate(maps)  # (layers * heads, T, T)
        factor = max(1, -(-MIN_TILE // stack.shape[-1]))
        thumbs = np.repeat(np.repeat(stack, factor, 1), factor, 2)
        peak = float(stack.max()) if stack.max() > 0 else 1.0
        self.body.show_content()
        self.grid.set_highlight(None)
        self.grid.set_tiles(thumbs, (0.0, peak), cols=self._heads, pad=max(1, factor // 2))
        self.grid.plot.autoRange(padding=0.02)
        self.grid.set_highlight(row * self._heads + head)
        weights = maps[row][head]
        top = float(weights.max()) if weights.max() > 0 else 1.0  # long sequences: weights near 1/T
        symbols = symbols or self._token_symbols(sample, weights.shape[-1])
        entropy = float(attention_entropy(weights))
        uniform = float(np.mean(np.log(np.maximum(1, np.count_nonzero(weights > 0, axis=-1)))))
        self.map.set_map(weights, (0.0, top), symbols, symbols,
                         title=f"{layer} · head {head}<br>entropy {entropy:.2f} nats (uniform: {uniform:.2f})")
        self.shown = {"layer": layer, "head": head, "sample": sample, "weights": weights, "entropy": entropy,
                      "thumbnails": stack, "symbols": symbols, "typed": typed is not None}
        self.cls_view.setVisible(self.run.patch_grid is not None and typed is None)
        if self.run.patch_grid is not None and typed is None:
            self._vit(frame, sample, maps, weights)
        layers = ", ".join(self._layers) if len(self._layers) <= 4 else f"{self._layers[0]} … {self._layers[-1]}"
        self.caption.setText(
            f"<b>Attention</b> of {what}: thumbnails are {len(self._layers)} layers ({layers}) down × heads "
            f"0–{self._heads - 1} across; in each map row <i>q</i> shows how query token <i>q</i> spreads its "
            f"attention over the keys (rows sum to 1); thumbnails share one scale, 0 to {peak:.2f}, so a "
            "spread-out head looks dark. Click a thumbnail to enlarge it; hover for values.")

    def _symbols_of(self, ids: np.ndarray) -> list[str]:
        tokens = self.run.tokens or []
        return [f"{tokens[t] if 0 <= t < len(tokens) else t}" for t in ids]

    def _token_symbols(self, sample: int, length: int) -> list[str]:
        run = self.run
        if run.patch_grid is not None:
            return ["CLS"] + [f"p{i}" for i in range(length - 1)]
        return self._symbols_of(np.asarray(run.probe_inputs[sample]).astype(np.int64).ravel()[:length])

    def _vit(self, frame: Frame, sample: int, maps: list[np.ndarray], weights: np.ndarray) -> None:
        gh, gw = self.run.patch_grid
        image = np.asarray(self.run.probe_inputs[sample], np.float32)
        image = np.clip(image.transpose(1, 2, 0), 0, 1) if image.shape[0] == 3 else np.repeat(image[0][..., None], 3, -1)
        cls = weights[0, 1:].reshape(gh, gw)
        rollout = attention_rollout([m[None] for m in maps])[0][0, 1:].reshape(gh, gw)
        tiles = np.stack([overlay(image, cls), overlay(image, rollout)]).astype(np.float32)
        self.cls_view.set_tiles(tiles, (0.0, 1.0), cols=2, pad=2)
        layer, head = self.selected_head()
        self.cls_view.plot.setTitle(f"left: class token → patches ({layer}, head {head})<br>"
                                    "right: attention rollout through all layers", size="9pt")
        self.cls_view.setToolTip("Bright patches are attended to. Left: the selected head's attention from the "
                                 "class token. Right: attention rollout through all layers (heads averaged, "
                                 "residual added).")
        self.cls_view.plot.autoRange(padding=0.02)
        self.shown.update({"cls_attention": cls, "rollout": rollout})

    def _tile_clicked(self, index: int) -> None:
        if self._heads:
            row, head = divmod(index, self._heads)
            if row < len(self._layers):
                self.selection.set(layer=self._layers[row], head=head)
