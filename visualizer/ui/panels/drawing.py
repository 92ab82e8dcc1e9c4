"""Drawing pad: draw an input with the mouse (or open an image file) and see what the model makes of it.

For a model on 8x8 digits the drawing is preprocessed exactly like scikit-learn's digits
(32x32 bitmap, 4x4 blocks, 0-16 ink counts); for other one-channel image models it is
averaged down to the input size. The prediction runs as an analysis on a snapshot of the
weights, so the panel never touches the live model.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from visualizer.stream.frames import RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.drawing_pad import DrawingPad
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.plots import ImageGrid
from visualizer.ui.widgets.probability_bars import ProbabilityBars

PREDICT = "draw"
NEEDS_GREY = ("<b>The drawing pad feeds one-channel images.</b> This model takes inputs of shape {shape}; "
              "open the digits example (File &gt; Open example &gt; cnn-digits) to draw a digit.")


class DrawingPanel(AnalysisPanel):
    """A pad, the model input it becomes, and the model's class probabilities for it."""

    title = "Drawing pad"
    key = "drawing"
    analyses = (PREDICT,)

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label("Draw with the mouse; right-click or Clear to start again.")
        self.pad = DrawingPad()
        self.pad.drawn.connect(self._drawn)
        self.image_input: np.ndarray | None = None
        self.preview = ImageGrid(colorbar=False, label="model input")
        self.preview.setToolTip("What the model sees: the drawing preprocessed like its training data")
        self.preview.setMinimumSize(140, 140)
        self.bars = ProbabilityBars(180, 175, title="P(class) for the drawing")
        clear = QPushButton("Clear")
        clear.clicked.connect(self.pad.clear)
        self.preview_note = caption_label("what the model sees (dark = no ink, yellow = fully inked)", 0.8)
        self.open_image = QPushButton("Open image…")
        self.open_image.setToolTip("A PNG or JPEG file, resized to the model's input (for models on colour images too)")
        self.open_image.clicked.connect(lambda: self.choose_image())
        buttons = QHBoxLayout()
        buttons.addWidget(clear)
        buttons.addWidget(self.open_image)
        left = QVBoxLayout()
        left.addWidget(self.pad)
        left.addLayout(buttons)
        left.addStretch(1)
        side = QVBoxLayout()
        side.addWidget(self.preview, 1)
        side.addWidget(self.preview_note)
        side.addWidget(self.bars)
        row = QHBoxLayout()
        row.addLayout(left)
        row.addLayout(side, 1)
        holder = QWidget()
        holder.setLayout(row)
        self.body = Placeholder(holder)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.body, 1)
        self._seq = 0
        self.body.show_message("Open a model that takes one-channel images to draw for it.")

    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        shape = tuple(run.input_shape)
        self.image_input = None
        if len(shape) != 3 or shape[0] not in (1, 3):
            self.body.show_message(NEEDS_GREY.format(shape="×".join(map(str, shape))))
            return
        self.body.show_content()
        self.pad.setEnabled(shape[0] == 1)
        if shape[0] != 1:
            self.caption.setText("This model takes colour images: open a PNG or JPEG file to see what it makes of it.")
            self.bars.set_probs(None, list(run.class_names))
            return
        digits = shape[1:] == (8, 8)
        self.caption.setText("Draw a digit with the mouse (right-click clears). It is reduced like scikit-learn's "
                             "digits: a 32×32 bitmap, counted in 4×4 blocks (0–16 ink)." if digits else
                             f"Draw with the mouse (right-click clears); the ink is averaged down to {shape[1]}×{shape[2]}.")
        self.bars.set_probs(None, list(run.class_names))
        self.predict()

    def model_input(self) -> np.ndarray:
        """The model's input (1, *input_shape): the opened image, else the pad's drawing."""
        from visualizer.engine.data.drawing import drawing_to_input

        if self.image_input is not None:
            return self.image_input
        return drawing_to_input(self.pad.ink(), tuple(self.run.input_shape))

    def choose_image(self, path: str | None = None) -> bool:
        """Feed an image file to the model; a file that cannot be read is said in the caption."""
        from visualizer.engine.inputs import InputError, read_image

        if self.run is None or self.body.showing_message:
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.png *.jpg *.jpeg)")
            if not path:
                return False
        try:
            x = read_image(path, tuple(self.run.input_shape)).numpy()
        except InputError as exc:
            self.caption.setText(f"<b>{exc}</b>")
            return False
        self.image_input = x
        self.caption.setText(f"The model's answer for {path.rsplit('/', 1)[-1]}, resized to "
                             f"{self.run.input_shape[1]}×{self.run.input_shape[2]}. Draw or Clear to go back to the pad.")
        self.predict()
        return True

    def _drawn(self) -> None:
        self.image_input = None  # drawing replaces an opened image
        self.predict()

    def predict(self) -> None:
        if self.run is None or self.body.showing_message:
            return
        x = self.model_input()
        self.shown["input"] = x
        image = x[0].transpose(1, 2, 0) if x.shape[1] == 3 else x[0, 0]
        self.preview.set_tiles(image[None], (0.0, 1.0), cols=1)
        if not (x > 0).any():
            self.bars.set_probs(None, list(self.run.class_names))
            self.shown.pop("probs", None)
            return
        self._seq += 1
        self.request(PREDICT, "predict", inputs=x.tolist(), seq=self._seq)

    def analysis_update(self, update: Any) -> None:
        if update.state == "done" and self.run is not None:
            probs = np.asarray(update.result)[0]
            self.shown["probs"] = probs
            self.bars.set_probs(probs, list(self.run.class_names))
