"""Attribution: which parts of the selected sample drove the prediction, by several Captum
methods side by side, recomputed live while training runs so the evidence can be watched
moving from noise onto the object.

The work runs on a snapshot of the weights in the training process
(:func:`visualizer.capture.attribution.attribution_job`, analysis kind ``attribution``);
this panel only asks for it and draws the answer: a heat map over the image (with an
opacity slider), bars per feature for tabular or 2-D data, coloured tokens for sequences.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
)

from visualizer.capture.attribution_methods import DESCRIPTIONS, METHODS, TOKEN_METHODS
from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import AnalysisPanel, PanelContext
from visualizer.ui.widgets.analysis_controls import AnalysisControls
from visualizer.ui.widgets.attribution_views import BarsRow, OverlayRow, TokenRow, robust_normalised
from visualizer.ui.widgets.caption import caption_label
from visualizer.ui.widgets.placeholder import Placeholder
from visualizer.ui.widgets.token_symbols import token_symbols

NAME = "attribution"  # the analysis stream this panel owns
KIND = "attribution"
REFRESH_S = 3.0  # live mode: at most this often (or twice as long as the last job took)
TIPS = {**{k: v[0].upper() + v[1:] for k, v in DESCRIPTIONS.items()},
        "grad_cam": "The selected conv layer's maps weighted by their mean gradient, upsampled to the input "
                    "(the last conv layer when the selected layer is not a conv layer)"}
DEFAULT_METHODS = {"image": ("saliency", "integrated_gradients", "grad_cam"),
                   "features": ("saliency", "integrated_gradients", "occlusion"),
                   "tokens": ("saliency", "integrated_gradients")}
BASELINE_LABELS = {"zeros": "zeros (black)", "blur": "blurred input", "mean": "mean of the data", "uniform": "uniform noise"}
CONV_KINDS = ("Conv1d", "Conv2d")
WHAT = ("Which parts of the selected sample made the model choose the target class: red pushes towards it, "
        "blue away from it.")


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)  # ask once the number is typed, not on every digit
    return box


class AttributionPanel(AnalysisPanel):
    """Attributions of the selected probe sample to the target class by several methods
    side by side, with the settings that matter and a live mode."""

    title = "Attribution"
    key = "attribution"
    analyses = (NAME,)
    max_fps = 2.0  # render only checks whether a live refresh is due

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.caption = caption_label(WHAT)
        self.controls = AnalysisControls("Explain now", "Compute the attributions now, on the current weights",
                                         REFRESH_S)
        self.controls.refresh.setText("live")
        self.controls.refresh.setToolTip(f"While training runs, recompute about every {REFRESH_S:g} s on a snapshot "
                                         "of the newest weights (training is never held up)")
        self.controls.run_clicked.connect(self.run_now)
        self.controls.cancel_clicked.connect(lambda: self.cancel(NAME))

        self.method_boxes: dict[str, QCheckBox] = {}
        methods = QGridLayout()
        methods.setContentsMargins(0, 0, 0, 0)
        methods.setHorizontalSpacing(8)
        methods.setVerticalSpacing(0)
        for i, (key, label) in enumerate(METHODS.items()):
            box = QCheckBox(label)
            box.setToolTip(TIPS[key])
            box.toggled.connect(self._settings_changed)
            self.method_boxes[key] = box
            methods.addWidget(box, i // 3, i % 3)  # three columns: the panel fits the default middle column

        self.target = QComboBox()
        self.target.setToolTip("The class to explain: the one predicted for this sample, or any class")
        self.target.activated.connect(self._target_picked)
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.steps = _spin(2, 1024, 32, "Integrated Gradients: points on the path from the baseline to the input")
        self.baseline = QComboBox()
        for key, label in BASELINE_LABELS.items():
            self.baseline.addItem(label, key)
        self.baseline.setToolTip("What 'absent' means for Integrated Gradients, DeepLift, GradientSHAP and Occlusion")
        self.samples = _spin(1, 512, 16, "SmoothGrad and GradientSHAP: noisy copies averaged")
        self.window = _spin(1, 64, 4, "Occlusion: edge of the window slid over the input (stride: half of it)")
        self.position = _spin(0, 0, 0, "Models with one output per position (copy, reverse, sort, text, running "
                                       "parity): which output position to explain")
        for w in (self.steps, self.samples, self.window, self.position):
            w.valueChanged.connect(self._settings_changed)
        self.baseline.activated.connect(self._settings_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(70)
        self.opacity.setMaximumWidth(110)
        self.opacity.setToolTip("Opacity of the heat map over the image")
        self.opacity.valueChanged.connect(lambda v: self.overlay.set_opacity(v / 100.0))
        settings = QHBoxLayout()
        settings.setContentsMargins(0, 0, 0, 0)
        opacity = QHBoxLayout()
        opacity.addWidget(QLabel("opacity"))
        opacity.addWidget(self.opacity)
        opacity.addStretch(1)
        methods.addLayout(opacity, 2, 1, 1, 2)
        numbers = QHBoxLayout()  # a second row: the panel fits the default middle column
        numbers.setContentsMargins(0, 0, 0, 0)
        for row, label, widget in ((settings, "target", self.target), (settings, "baseline", self.baseline),
                                   (numbers, "steps", self.steps), (numbers, "samples", self.samples),
                                   (numbers, "window", self.window), (numbers, "position", self.position)):
            text = QLabel(label)
            text.setToolTip(widget.toolTip())
            row.addWidget(text)
            row.addWidget(widget)
            if widget is self.position:
                self.position_label = text
        settings.addStretch(1)
        numbers.addStretch(1)

        self.overlay = OverlayRow()
        self.bars = BarsRow()
        self.tokens = TokenRow()
        self.pages = QStackedWidget()
        for page in (self.overlay, self.bars, self.tokens):
            self.pages.addWidget(page)
        self.body = Placeholder(self.pages)
        self.note = caption_label("")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.caption)
        layout.addWidget(self.controls)
        layout.addLayout(methods)
        layout.addLayout(settings)
        layout.addLayout(numbers)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.note)
        self.mode = "image"
        self.per_position = False
        self._asked: dict[str, Any] | None = None  # params of the last request
        self._result: dict[str, Any] | None = None
        self._result_tag: dict[str, Any] = {}
        self.body.show_message("No run yet.")

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        inputs = np.asarray(run.probe_inputs)
        if inputs.dtype.kind in "iu" or run.data_kind == "sequence":  # token ids (sent to the window as floats)
            self.mode = "tokens"
        elif len(run.input_shape) >= 2:
            self.mode = "image"
        else:
            self.mode = "features"
        has_conv = any(l.kind in CONV_KINDS for l in run.layers)
        for key, box in self.method_boxes.items():
            ok = key in TOKEN_METHODS if self.mode == "tokens" else (key != "grad_cam" or (self.mode == "image" and has_conv))
            box.blockSignals(True)
            box.setEnabled(ok)
            box.setChecked(ok and key in DEFAULT_METHODS[self.mode])
            box.setToolTip(TIPS[key] if ok else f"{METHODS[key]} does not apply to this model or data")
            box.blockSignals(False)
        self.target.clear()
        self.target.addItem("predicted class", None)
        for k, name in enumerate(run.class_names):
            self.target.addItem(f"{k}: {name}", k)
        self.opacity.setEnabled(self.mode == "image")
        self.window.setValue(4 if self.mode == "image" else 1)
        labels = np.asarray(run.probe_labels)
        self.per_position = labels.ndim == 2 and labels.shape[1] > 0
        self.position.blockSignals(True)
        self.position.setRange(0, labels.shape[1] - 1 if self.per_position else 0)
        self.position.setValue(self.position.maximum())  # the last position: e.g. the whole string's parity
        self.position.blockSignals(False)
        for w in (self.position, self.position_label):
            w.setVisible(self.per_position)
        self.pages.setCurrentWidget({"image": self.overlay, "features": self.bars, "tokens": self.tokens}[self.mode])
        self.controls.reset()
        self._asked, self._result, self._result_tag = None, None, {}
        self.caption.setText(WHAT)
        self.note.setText("")
        self.body.show_message("Attributions appear here once the run has a frame; press <b>Explain now</b> "
                               f"or leave <b>live</b> on (every ~{REFRESH_S:g} s while training runs).")

    # ------------------------------------------------------------------ requests
    def chosen_methods(self) -> list[str]:
        return [k for k, box in self.method_boxes.items() if box.isEnabled() and box.isChecked()]

    def gradcam_layer(self) -> str | None:
        """The selected layer when it is a conv layer; None lets the job take the last conv layer."""
        if self.run is None:
            return None
        kinds = {l.name: l.kind for l in self.run.layers}
        layer = self.selection.layer
        return layer if kinds.get(layer) in CONV_KINDS else None

    def wanted(self) -> dict[str, Any] | None:
        """The request for the current selection and settings (None: nothing to ask)."""
        methods = self.chosen_methods()
        if self.run is None or not methods:
            return None
        target = self.selection.target
        if target is not None and not 0 <= int(target) < len(self.run.class_names):
            target = None
        return {
            "methods": methods,
            "samples": [self.sample_index()],
            "target": None if target is None else int(target),
            "layer": self.gradcam_layer() if "grad_cam" in methods else None,
            "settings": {"steps": self.steps.value(), "baseline": self.baseline.currentData(),
                         "n_samples": self.samples.value(), "window": self.window.value(),
                         **({"position": self.position.value()} if self.per_position else {})},
        }

    def run_now(self) -> None:
        params = self.wanted()
        if params is None:
            if self.run is not None:
                self.body.show_message("Tick at least one method to compare.")
            return
        self._asked = params
        self.request_with_status(
            NAME, KIND, f"explaining sample {params['samples'][0]} with {len(params['methods'])} method(s)…", **params)

    def render(self, frame: Frame | None) -> None:
        """Ask again when the selection or settings changed, or when live mode is due."""
        if self.run is None or frame is None:
            return
        params = self.wanted()
        if params is None:
            return
        if params != self._asked or self.controls.due(frame.step):
            self.run_now()

    def _settings_changed(self, *_args: Any) -> None:
        if self.run is not None and self.history.latest is not None:
            self.run_now()

    def _target_picked(self, index: int) -> None:
        self.selection.set(target=self.target.itemData(index))

    def selection_changed(self, changed: frozenset[str]) -> None:
        if "target" in changed:
            i = self.target.findData(self.selection.target)
            self.target.setCurrentIndex(max(0, i))
        if changed & {"sample", "target", "layer"} and self.history.latest is not None and self.wanted() != self._asked:
            self.run_now()

    # ------------------------------------------------------------------ results
    def analysis_update(self, update: Any) -> None:
        if not self.controls.show_update(update):
            return
        if update.state == "error":
            self.body.show_message(f"Could not compute the attributions: {update.message}")
            self.shown = {"error": update.message}
        if update.state != "done" or not isinstance(update.result, dict):
            return
        self._result, self._result_tag = update.result, dict(update.tag or {})
        self._draw()

    def _draw(self) -> None:
        result, tag, run = self._result, self._result_tag, self.run
        if not result or run is None:
            return
        sample = int(tag.get("samples", [0])[0])
        methods = [m for m in tag.get("methods", []) if m in result]
        raw = {m: np.asarray(result[m]["values"])[0] for m in methods}
        first = result[methods[0]]
        target, predicted = int(first["target"][0]), int(first["predicted"][0])
        titles = [self._title(m, result[m]) for m in methods]
        image = np.asarray(run.probe_inputs[sample])
        shown: dict[str, Any] = {"values": raw, "methods": methods, "sample": sample, "target": target,
                                 "predicted": predicted, "step": tag.get("step")}
        if self.mode == "image":
            maps = {m: robust_normalised(v.sum(0) if v.ndim == 3 else v)[0] for m, v in raw.items()}
            truth = run.class_names[int(run.probe_labels[sample])] if sample < len(run.probe_labels) else "?"
            self.overlay.set_maps(image, [maps[m] for m in methods], titles,
                                  f"input (sample {sample})<br><span style='color:#666'>true: {truth}</span>")
            shown["maps"] = maps
        elif self.mode == "features":
            x = np.asarray(image, np.float64).reshape(-1)
            base = ["x", "y"] if run.data_kind == "plane" and x.size == 2 else [f"feature {i}" for i in range(x.size)]
            names = [f"{n} = {v:.2f}" for n, v in zip(base, x)]
            self.bars.set_values([raw[m] for m in methods], titles, names)
        else:
            shown["tokens"] = token_symbols(run.tokens, image)
            self.tokens.set_values([raw[m] for m in methods], titles, shown["tokens"])
        if "integrated_gradients" in result:
            ig = result["integrated_gradients"]
            total = float(np.asarray(ig["values"])[0].sum())
            delta = float(np.asarray(ig["delta"])[0])
            shown["delta"] = delta
            gap = total - delta
            share = f" ({abs(delta) / abs(gap):.1%} of it)" if gap else ""
            self.note.setText(f"Integrated Gradients: sum of attributions {total:.4g}, f(x) − f(baseline) {gap:.4g}; "
                              f"convergence δ = {delta:.2g}{share}. A large δ means too few steps.")
        else:
            self.note.setText("")
        self.shown = shown
        self.body.show_content()
        self._caption(sample, target, predicted, tag.get("step"), first.get("position"))

    def _title(self, method: str, r: dict[str, Any]) -> str:
        label = METHODS.get(method, method)
        scale = float(np.abs(np.asarray(r["values"])[0]).max()) if np.asarray(r["values"]).size else 0.0
        extra = [f"max |a| {scale:.2g}"]  # one fact a line: tiles are narrow
        if method == "grad_cam" and r.get("layer"):
            extra.insert(0, str(r["layer"]))
        if r.get("delta") is not None:
            extra.append(f"δ {float(np.asarray(r['delta'])[0]):.1g}")
        return f"{label}<br><span style='color:#666'>{'<br>'.join(extra)}</span>"

    def _caption(self, sample: int, target: int, predicted: int, step: Any, position: int | None = None) -> None:
        run = self.run
        names = run.class_names
        labels = np.asarray(run.probe_labels)
        truth = "?"
        if sample < len(labels):
            label = labels[sample]
            if label.ndim:  # one label per output position: the explained position's
                label = label[position if position is not None else -1]
            truth = names[int(label)]
        where = "" if position is None else f" at output position {position}"
        what = "the predicted class" if self.selection.target is None else "the chosen class"
        when = "" if step is None else f" Weights of step {int(step):,}."
        self.caption.setText(f"{WHAT} Sample {sample}{where} (true: {truth}), predicted <b>{names[predicted]}</b>; "
                             f"explaining {what} <b>{names[target]}</b>.{when}")
