"""Run setup: the model, data, training settings and device of a run, as a form.

Training settings (learning rate, optimizer, batch size, weight decay, momentum and
dropout) change the running run at its next step. Model, data, seed and device
changes describe a new run: the form marks itself pending and "Start new run" asks
the main window to build it.
"""
from __future__ import annotations

import copy
import inspect
import math
import sys
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from visualizer.stream.frames import Frame, RunInfo
from visualizer.ui.panels.base import Panel, PanelContext

ARCHS = {
    "mlp": ("MLP (fully connected)", "Layers of fully connected units; works on 2-D points and (flattened) images."),
    "cnn": ("CNN (convolutional)", "Convolution + pooling stages, then a dense layer: learns local image features. Images only."),
    "resnet": ("ResNet (residual CNN)", "Convolution blocks with skip connections and batch norm. Images only."),
}
DATASETS = {
    "spiral": ("Spiral (2-D, 3 classes)", "plane", "Three interleaved spiral arms: needs a curved decision boundary."),
    "moons": ("Moons (2-D, 2 classes)", "plane", "Two interleaving half circles."),
    "circles": ("Circles (2-D, 2 classes)", "plane", "A small circle inside a large one: not linearly separable."),
    "xor": ("XOR (2-D, 2 classes)", "plane", "Four quadrants labelled by whether x and y share a sign."),
    "blobs": ("Blobs (2-D)", "plane", "Gaussian clusters around a circle: the easy case."),
    "shapes": ("Shapes (32×32 RGB, 8 classes)", "image", "Textured shapes on noisy backgrounds; only the outline tells the class."),
    "digits": ("Digits (8×8 handwritten, 10 classes)", "image", "scikit-learn's small handwritten digits."),
}
DATA_FIELDS = ("n_samples", "noise", "n_classes", "n_train", "n_val", "upscale")  # the seed is the run's
OPTIMIZERS = {
    "sgd": ("SGD", "Plain stochastic gradient descent (with momentum below)."),
    "adam": ("Adam", "Adaptive per-parameter step sizes; forgiving about the learning rate."),
    "adamw": ("AdamW", "Adam with decoupled weight decay (shrinks weights directly)."),
}
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid")
INITS = {
    "auto": "auto",
    "kaiming": "Kaiming (He)",
    "xavier": "Xavier (Glorot)",
    "default": "PyTorch default",
}
INIT_TIP = (
    "How the weights start.\n"
    "auto: Kaiming (He) for ReLU/GELU, Xavier (Glorot) for tanh/sigmoid.\n"
    "Kaiming (He): std = √(2 / fan_in); keeps ReLU signals from shrinking layer by layer.\n"
    "Xavier (Glorot): std = √(2 / (fan_in + fan_out)); suits saturating tanh/sigmoid.\n"
    "PyTorch default: small uniform weights; a deep ReLU net can stall at chance with it."
)
LIVE = ("lr", "optimizer", "batch_size", "weight_decay", "momentum", "dropout")
MAX_LR = 10.0
ERROR_STYLE = "border: 1px solid #c62828;"


class SetupPanel(Panel):
    """A compact form for the run: live training settings and the spec of a new run."""

    title = "Run setup"
    key = "setup"

    run_requested = Signal(dict)  # a complete RunSpec dict for a new run
    setting_changed = Signal(str, object)  # a live change: name in LIVE, value

    def __init__(self, context: PanelContext) -> None:
        super().__init__(context)
        self.fields: dict[str, QWidget] = {}
        self._forms: dict[str, QFormLayout] = {}
        self._loading = False
        self._current: dict[str, Any] | None = None  # the running run's spec, live values kept up to date
        self._baseline: dict[str, Any] | None = None  # its structural part, read back from the form
        self._from_file = False  # the run was not built from a spec (a model opened from a file)
        self._locked = False  # model and data fields read-only (from a file, until unlocked)
        self._model_defaults: dict[str, dict[str, Any]] = {}
        self._build()
        if "torch" in sys.modules:  # cheap now; otherwise wait for the first run
            self._fill(self._default_spec())
            self._refresh()
        else:
            self._set_structural_enabled(False)
            self.status.setText("Waiting for the first run to load…")
            self.start_button.setEnabled(False)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)

        self.status = _wrapping_label()
        self.status.setToolTip("Whether the form shows the running run or a new run waiting to start")
        self.unlock_button = QPushButton("Set up a new run instead")
        self.unlock_button.setToolTip("Unlock model and data to build a fresh run (the opened model stays until you start it)")
        self.unlock_button.clicked.connect(self._unlock)
        self.unlock_button.hide()
        column.addWidget(self.unlock_button)

        # Model
        model = self._group(column, "model", "Model  (changes start a new run)", "Changes here describe a new run, trained from scratch.")
        self._combo("arch", model, "Architecture", ARCHS, "Which network to train")
        self._spin("depth", model, "Hidden layers", 1, 32, "Number of hidden fully connected layers (depth)")
        self._spin("width", model, "Units per layer", 1, 4096, "Units in each hidden layer (width)")
        self._int_list("channels", model, "Conv channels", "Output channels of each conv stage, comma separated, e.g. 16, 32, 64 (1 to 6 stages)")
        self._spin("kernel_size", model, "Kernel size", 1, 11, "Side of each square convolution kernel, odd (3 = 3×3)", step=2)
        self._spin("hidden", model, "Dense units", 1, 4096, "Units of the fully connected layer after the conv stages")
        self._int_list("widths", model, "Stage widths", "Channels of each ResNet stage, comma separated, e.g. 16, 32, 64; each later stage halves the resolution")
        self._spin("blocks_per_stage", model, "Blocks per stage", 1, 8, "Residual blocks (two 3×3 convs each) in every stage")
        self._combo("activation", model, "Activation", {a: (a, "") for a in ACTIVATIONS},
                    "Non-linearity after each layer: relu/gelu keep gradients alive; tanh/sigmoid saturate")
        self._check("batch_norm", model, "Batch norm", "Normalise each layer's outputs over the batch: steadier, faster training")
        self._check("residual", model, "Residual", "Skip connections add each block's input to its output, so gradients reach early layers")
        self._double("dropout", model, "Dropout (live)", 0.0, 0.95, 0.05, 2,
                     "Fraction of units zeroed at random while training (regularisation). Changes the running run at once.")
        self._combo("init", model, "Weight init", {k: (v, "") for k, v in INITS.items()}, INIT_TIP)
        self.init_note = QLabel()
        self.init_note.setTextFormat(Qt.TextFormat.RichText)
        self.init_note.setToolTip(INIT_TIP)
        self.init_note.setStyleSheet("color: #555;")
        model.addRow(self.init_note)
        self.fields["arch"].currentIndexChanged.connect(self._arch_changed)

        # Data
        data = self._group(column, "data", "Data  (changes start a new run)", "Changes here describe a new run, trained from scratch.")
        self._combo("data", data, "Dataset", {k: (v[0], v[2]) for k, v in DATASETS.items()},
                                      "What the network learns to classify")
        self._spin("n_samples", data, "Samples", 20, 100000, "Number of 2-D points (a fifth is held out for validation)", step=100)
        self._double("noise", data, "Noise", 0.0, 2.0, 0.05, 2, "How much the points are jittered: more noise, harder task")
        self._spin("n_classes", data, "Classes", 2, 10, "Number of blobs (one class each)")
        self._spin("n_train", data, "Train images", 8, 100000, "Images to train on", step=500)
        self._spin("n_val", data, "Val images", 8, 20000, "Held-out images to measure validation accuracy", step=100)
        self._spin("upscale", data, "Upscale", 1, 8, "Enlarge each 8×8 digit by this factor (4 gives 32×32 images, bigger feature maps)")
        self.compat_note = _wrapping_label()
        self.compat_note.setStyleSheet("color: #c62828;")
        self.compat_note.hide()
        data.addRow(self.compat_note)
        self.fields["data"].currentIndexChanged.connect(self._data_changed)

        # Training
        train = self._group(column, "train", "Training  (applies at the next step)", "Changes here apply to the running run at its next step; only the seed needs a new run.")
        self._combo("optimizer", train, "Optimizer", OPTIMIZERS, "The update rule")
        self._lr_field(train)
        self._spin("batch_size", train, "Batch size", 1, 65536, "Samples per training step", step=16)
        self._double("weight_decay", train, "Weight decay", 0.0, 1.0, 1e-4, 5,
                     "Pulls weights towards zero each step (L2 regularisation); 0 = off")
        self._double("momentum", train, "Momentum", 0.0, 0.999, 0.05, 3,
                     "SGD only: how much of the previous update carries over (0.9 is usual)")
        self._spin("seed", train, "Seed", 0, 2**31 - 1, "Random seed of the data, weights and batch order (a new run)")

        # Device
        device = self._group(column, "device", "Device  (changes start a new run)", "Moving to another device needs a new run.")
        self._combo("device", device, "Device", {"auto": ("auto (best available)", ""), "cpu": ("cpu", "")},
                    "Where to train: auto picks CUDA, then Apple MPS, then the CPU")

        column.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(content)

        # Status on top and the buttons with any problem below stay in view while the form scrolls.
        self.message = _wrapping_label()
        self.message.setStyleSheet("color: #c62828;")
        self.message.hide()
        self.start_button = QPushButton("Start new run")
        self.start_button.setToolTip("Build a new run from this form (the current run is discarded after you confirm)")
        self.start_button.clicked.connect(self.start_new_run)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Put back the running run's values")
        self.revert_button.clicked.connect(self.revert)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.revert_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)

    def _group(self, column: QVBoxLayout, key: str, title: str, note: str) -> QFormLayout:
        box = QGroupBox(title)
        box.setToolTip(note)
        box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # no gaps: spare room goes below
        form = QFormLayout(box)
        form.setContentsMargins(6, 4, 6, 6)
        form.setVerticalSpacing(4)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        column.addWidget(box)
        self._forms[key] = form
        return form

    def _add(self, name: str, form: QFormLayout, label: str, widget: QWidget, tip: str) -> None:
        widget.setToolTip(tip)
        widget.setMinimumWidth(60)
        self.fields[name] = widget
        row_label = QLabel(label)
        row_label.setToolTip(tip)
        form.addRow(row_label, widget)
        self._forms[name] = form

    def _combo(self, name: str, form: QFormLayout, label: str, items: dict[str, tuple[str, str]], tip: str) -> QComboBox:
        combo = QComboBox()
        for i, (key, (text, item_tip)) in enumerate(items.items()):
            combo.addItem(text, key)
            if item_tip:
                combo.setItemData(i, item_tip, Qt.ItemDataRole.ToolTipRole)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        self._add(name, form, label, combo, tip)
        combo.currentIndexChanged.connect(lambda _i, n=name: self._edited(n))
        return combo

    def _spin(self, name: str, form: QFormLayout, label: str, lo: int, hi: int, tip: str, step: int = 1) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)  # valueChanged once editing is finished, not per keystroke
        self._add(name, form, label, spin, tip)
        spin.valueChanged.connect(lambda _v, n=name: self._edited(n))
        return spin

    def _double(self, name: str, form: QFormLayout, label: str, lo: float, hi: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(decimals)
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)
        self._add(name, form, label, spin, tip)
        spin.valueChanged.connect(lambda _v, n=name: self._edited(n))
        return spin

    def _check(self, name: str, form: QFormLayout, label: str, tip: str) -> QCheckBox:
        check = QCheckBox()
        self._add(name, form, label, check, tip)
        check.toggled.connect(lambda _v, n=name: self._edited(n))
        return check

    def _int_list(self, name: str, form: QFormLayout, label: str, tip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText("16, 32, 64")
        self._add(name, form, label, edit, tip)
        edit.editingFinished.connect(lambda n=name: self._edited(n))
        return edit

    def _lr_field(self, form: QFormLayout) -> None:
        tip = ("Step size of each update, a positive number up to 10 (e.g. 0.001 or 1e-3).\n"
               "Learning rates are best explored on a log scale: ÷2 and ×2 halve and double it.")
        self.lr_edit = QLineEdit()
        self.lr_edit.setPlaceholderText("e.g. 1e-3")
        self.lr_edit.editingFinished.connect(lambda: self._edited("lr"))
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(2)
        h.addWidget(self.lr_edit, 1)
        for text, factor in (("÷2", 0.5), ("×2", 2.0)):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(f"{'Halve' if factor < 1 else 'Double'} the learning rate (applies at the next step)")
            button.clicked.connect(lambda _c=False, f=factor: self._scale_lr(f))
            h.addWidget(button)
        self.lr_edit.setToolTip(tip)
        self.lr_edit.setMinimumWidth(60)
        self.fields["lr"] = self.lr_edit
        self._forms["lr"] = form
        label = QLabel("Learning rate")
        label.setToolTip(tip)
        form.addRow(label, row)

    # ------------------------------------------------------------------ form <-> spec
    def _default_spec(self) -> dict[str, Any]:
        from visualizer.engine.trainer import TrainConfig

        config = TrainConfig()
        return {"model": "cnn", "data": "shapes", "model_options": {}, "data_options": {},
                "config": {k: getattr(config, k) for k in ("optimizer", "lr", "batch_size", "weight_decay", "momentum", "seed")},
                "device": "auto"}

    def _model_option_defaults(self, arch: str) -> dict[str, Any]:
        if arch not in self._model_defaults:
            from visualizer.engine.models import model_options

            self._model_defaults[arch] = model_options(arch)
        return dict(self._model_defaults[arch])

    def _data_option_defaults(self, name: str) -> dict[str, Any]:
        """Defaults of the dataset's options that this form edits, read from its builder's signature."""
        from visualizer.engine.data import DATASETS as BUILDERS

        builder = BUILDERS.get(name)
        if builder is None:
            return {}
        params = inspect.signature(builder).parameters
        return {k: p.default for k, p in params.items()
                if k in DATA_FIELDS and p.default is not inspect.Parameter.empty}

    def _fill(self, spec: dict[str, Any]) -> None:
        """Show ``spec`` in the form; options missing from it take the defaults."""
        self._loading = True
        try:
            arch, data = spec.get("model", "cnn"), spec.get("data", "shapes")
            _set_combo(self.fields["arch"], arch)
            _set_combo(self.fields["data"], data)
            self._fill_model_options(arch, spec.get("model_options", {}))
            self._fill_data_options(data, spec.get("data_options", {}))
            config = spec.get("config", {})
            for name in ("optimizer", "batch_size", "weight_decay", "momentum", "seed"):
                if name in config:
                    self._set(name, config[name])
            if "lr" in config:
                self.lr_edit.setText(_format_lr(config["lr"]))
            self._ensure_device_items()
            _set_combo(self.fields["device"], spec.get("device", "auto"))
        finally:
            self._loading = False

    def _fill_model_options(self, arch: str, options: dict[str, Any]) -> None:
        try:
            merged = {**self._model_option_defaults(arch), **options}
        except ValueError:
            merged = dict(options)
        for name, value in merged.items():
            if name in self.fields:
                self._set(name, value)

    def _fill_data_options(self, data: str, options: dict[str, Any]) -> None:
        for name, value in {**self._data_option_defaults(data), **options}.items():
            if name in self.fields:
                self._set(name, value)

    def _set(self, name: str, value: Any) -> None:
        w = self.fields[name]
        if isinstance(w, QComboBox):
            _set_combo(w, value)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QLineEdit):
            w.setText(", ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value))

    def _get(self, name: str) -> Any:
        w = self.fields[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QDoubleSpinBox):
            return round(float(w.value()), w.decimals())
        if isinstance(w, QSpinBox):
            return int(w.value())
        return w.text()  # type: ignore[attr-defined]

    def _model_fields(self, arch: str) -> list[str]:
        try:
            return [k for k in self._model_option_defaults(arch) if k in self.fields]
        except ValueError:
            return []

    def _data_fields(self, data: str) -> list[str]:
        return list(self._data_option_defaults(data))

    def read_spec(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The RunSpec dict the form shows, and the problems found (field -> message)."""
        errors: dict[str, str] = {}
        arch, data = self._get("arch"), self._get("data")
        model_options: dict[str, Any] = {}
        for name in self._model_fields(arch):
            value = self._get(name)
            if name in ("channels", "widths"):
                value, problem = _parse_int_list(value, 1, 512, 6)
                if problem:
                    errors[name] = f"{_label(name)}: {problem}"
            elif name == "kernel_size" and value % 2 == 0:
                errors[name] = "Kernel size must be odd (so padding keeps the image size)."
            model_options[name] = value
        data_options = {name: self._get(name) for name in self._data_fields(data)}
        lr, problem = _parse_lr(self.lr_edit.text())
        if problem:
            errors["lr"] = problem
        config = {"optimizer": self._get("optimizer"), "lr": lr, "batch_size": self._get("batch_size"),
                  "weight_decay": self._get("weight_decay"), "momentum": self._get("momentum"),
                  "seed": self._get("seed")}
        if DATASETS.get(data, ("", "image"))[1] == "plane" and arch != "mlp":
            errors["data"] = (f"{ARCHS.get(arch, (arch,))[0].split(' ')[0]} needs images: {data} is 2-D point data, which only "
                              "the MLP can take. Pick MLP, or an image dataset (shapes, digits).")
        spec = {"model": arch, "data": data, "model_options": model_options, "data_options": data_options,
                "config": config, "device": self._get("device")}
        return spec, errors

    @staticmethod
    def _structural(spec: dict[str, Any]) -> dict[str, Any]:
        s = copy.deepcopy(spec)
        s["config"] = {"seed": spec["config"].get("seed")}
        s["model_options"].pop("dropout", None)
        return s

    def _structural_changed(self, spec: dict[str, Any]) -> bool:
        if self._baseline is None:
            return True
        a, b = self._structural(spec), self._structural(self._baseline)
        if spec["model"] != self._baseline["model"]:
            return True
        # dropout counts as structural only when the running model has none to change
        if "dropout" in spec["model_options"] and "dropout" not in self._baseline["model_options"]:
            a["model_options"]["dropout"] = spec["model_options"]["dropout"]
        return a != b

    # ------------------------------------------------------------------ run
    def set_run(self, run: RunInfo) -> None:
        super().set_run(run)
        run_spec = dict(run.run_spec or {})
        self._from_file = not run_spec
        model_spec = run.spec or {}
        arch = model_spec.get("arch")
        known_options = dict(model_spec.get("options", {})) if arch in ARCHS else {}
        if self._from_file:
            spec = {**self._default_spec(), "config": {}}  # the trainer's own config below
            if arch in ARCHS:
                spec["model"] = arch
            if run.data_name in DATASETS:
                spec["data"] = run.data_name
        else:
            spec = copy.deepcopy(run_spec)
            spec.setdefault("model_options", {})
            spec.setdefault("data_options", {})
            spec.setdefault("device", "auto")
        config = {**self._default_spec()["config"], **(run.config or {}), **spec.get("config", {})}
        spec["config"] = {k: config[k] for k in ("optimizer", "lr", "batch_size", "weight_decay", "momentum", "seed")}
        spec["model_options"] = {**(known_options if spec["model"] == arch else {}), **spec.get("model_options", {})}
        self._fill(spec)
        self._current, _ = self.read_spec()
        self._current["config"]["lr"] = float(config["lr"])
        self._baseline = copy.deepcopy(self._current)
        self._set_locked(self._from_file)
        self._refresh()

    def render(self, frame: Frame | None) -> None:
        """The form does not follow frames."""

    def selection_changed(self, changed: frozenset[str]) -> None:
        """The form does not depend on the selection."""

    # ------------------------------------------------------------------ actions
    def start_new_run(self) -> None:
        """Emit ``run_requested`` with the form's spec, or show why it cannot start."""
        spec, errors = self.read_spec()
        if not errors:
            from visualizer.engine.trainer import TrainConfig

            try:
                TrainConfig(**spec["config"]).validated()
            except (TypeError, ValueError) as exc:
                errors["config"] = f"Training settings: {exc}"
        self._show_errors(errors)
        if errors or self._locked:
            return
        self.run_requested.emit(copy.deepcopy(spec))

    def revert(self) -> None:
        """Put back the running run's values (live values as they are now)."""
        if self._current is None:
            return
        self._fill(self._current)
        self._set_locked(self._from_file)
        self._refresh()

    def _unlock(self) -> None:
        self._set_locked(False)
        self._refresh()

    def _scale_lr(self, factor: float) -> None:
        lr, problem = _parse_lr(self.lr_edit.text())
        if problem:
            self._edited("lr")
            return
        self.lr_edit.setText(_format_lr(min(MAX_LR, float(f"{lr * factor:.3g}"))))
        self._edited("lr")

    # ------------------------------------------------------------------ reactions
    def _arch_changed(self) -> None:
        if self._loading:
            return
        arch = self._get("arch")
        keep = {k: self._get(k) for k in ("activation", "init")}
        self._loading = True
        try:
            if self._current is not None and arch == self._current["model"]:
                self._fill_model_options(arch, self._current["model_options"])
            else:
                self._fill_model_options(arch, keep)
        finally:
            self._loading = False
        self._refresh()

    def _data_changed(self) -> None:
        if self._loading:
            return
        data = self._get("data")
        options = self._current["data_options"] if self._current is not None and data == self._current["data"] else {}
        self._loading = True
        try:
            self._fill_data_options(data, options)
        finally:
            self._loading = False
        self._refresh()

    def _edited(self, name: str) -> None:
        """A field changed: apply it live if it is a training setting, then update the form."""
        if self._loading:
            return
        if name in LIVE and self._current is not None:
            self._apply_live(name)
        self._refresh()

    def _apply_live(self, name: str) -> None:
        spec, errors = self.read_spec()
        if name in errors:
            self._show_errors({name: errors[name]})
            return
        if name == "dropout":
            running = self._current["model_options"]
            if spec["model"] != self._current["model"] or "dropout" not in running:
                return  # a different model: the rate belongs to the new run
            value, old = spec["model_options"]["dropout"], running["dropout"]
        else:
            value, old = spec["config"][name], self._current["config"][name]
        if value == old:
            return
        if name == "dropout":
            self._current["model_options"]["dropout"] = value
            self._baseline["model_options"]["dropout"] = value
        else:
            self._current["config"][name] = value
            self._baseline["config"][name] = value
        self.setting_changed.emit(name, value)

    def _refresh(self) -> None:
        """Show the fields that apply, the init note, problems and the pending state."""
        arch, data = self._get("arch"), self._get("data")
        locked = self._locked
        model_fields = set(self._model_fields(arch))
        data_fields = set() if locked else set(self._data_fields(data))  # unknown for an opened model
        for name in ("depth", "width", "channels", "kernel_size", "hidden", "widths", "blocks_per_stage",
                     "activation", "batch_norm", "residual", "dropout", "init"):
            self._forms[name].setRowVisible(self.fields[name], name in model_fields)
        for name in DATA_FIELDS:
            self._forms[name].setRowVisible(self.fields[name], name in data_fields)
        self._forms["momentum"].setRowVisible(self.fields["momentum"], self._get("optimizer") == "sgd")
        self._update_init_note(model_fields)

        spec, errors = self.read_spec()
        self._show_errors(errors)
        compat = errors.get("data")
        self.compat_note.setText(compat or "")
        self.compat_note.setVisible(bool(compat))
        pending = not locked and (self._from_file or self._structural_changed(spec))
        self.start_button.setEnabled(pending and not errors)
        self.revert_button.setEnabled(self._current is not None)
        if locked:
            name = self.run.model_name if self.run else "model"
            self.status.setText(f"<b>{name} opened from a file</b>: only the training settings can change. "
                                "Model and data show what it was built with.")
        elif pending and self._current is not None:
            self.status.setText("<b>Pending new run</b>: model, data, seed or device changed. "
                                "<i>Start new run</i> trains it from scratch; <i>Revert</i> keeps the current one.")
        elif pending:
            self.status.setText("<b>New run</b>: choose the settings, then <i>Start new run</i>.")
        else:
            self.status.setText("Showing the <b>running run</b>. Training settings apply at its next step.")
        self.shown = {"spec": spec, "pending": bool(pending), "errors": dict(errors)}

    def _update_init_note(self, model_fields: set[str]) -> None:
        if "init" not in model_fields:
            self.init_note.hide()
            return
        activation, init = self._get("activation"), self._get("init")
        relu_like = activation in ("relu", "gelu")
        right = "kaiming" if relu_like else "xavier"
        # Explicit line breaks: a word-wrapped label in a form over-reserves height.
        lines = ["auto → Kaiming (He) for ReLU/GELU,", "Xavier (Glorot) for tanh/sigmoid."]
        if init == "auto":
            lines.append(f"Here: <b>{INITS[right]}</b>, for {activation}.")
        elif init == "default":
            lines += ["<span style='color:#b26a00'>PyTorch's default can leave a deep</span>",
                      "<span style='color:#b26a00'>network stuck at chance.</span>"]
        elif init != right:
            meant = "tanh/sigmoid" if init == "xavier" else "ReLU/GELU"
            lines += [f"<span style='color:#b26a00'>Note: {INITS[init]} suits {meant},</span>",
                      f"<span style='color:#b26a00'>not {activation}.</span>"]
        text = "<br>".join(lines)
        self.init_note.setText(text)
        self.init_note.show()

    def _show_errors(self, errors: dict[str, str]) -> None:
        for name, widget in self.fields.items():
            style = ERROR_STYLE if name in errors and name != "data" else ""
            if widget.styleSheet() != style:
                widget.setStyleSheet(style)
        # The data clash is explained in full in the Data group; down here it only says why Start is off.
        shown = [m if n != "data" else "Cannot start: this model needs image data (see Data)." for n, m in errors.items()]
        self.message.setText("\n".join(shown))
        self.message.setVisible(bool(shown))

    def _set_locked(self, locked: bool) -> None:
        """Make model, data, seed and device read-only (an opened model) or editable."""
        self._locked = locked
        self.unlock_button.setVisible(locked)
        self._set_structural_enabled(not locked)

    def _set_structural_enabled(self, enabled: bool) -> None:
        for name in ("arch", "depth", "width", "channels", "kernel_size", "hidden", "widths", "blocks_per_stage",
                     "activation", "batch_norm", "residual", "init", "data", "n_samples", "noise", "n_classes",
                     "n_train", "n_val", "upscale", "seed", "device"):
            self.fields[name].setEnabled(enabled)

    def _ensure_device_items(self) -> None:
        from visualizer.engine.devices import available_devices

        combo: QComboBox = self.fields["device"]  # type: ignore[assignment]
        have = [combo.itemData(i) for i in range(combo.count())]
        for name in available_devices():
            if name not in have:
                combo.addItem(name, name)


def _wrapping_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _set_combo(combo: QComboBox, value: Any) -> None:
    index = combo.findData(value)
    if index < 0 and value is not None:
        combo.addItem(str(value), value)
        index = combo.count() - 1
    if index >= 0:
        combo.setCurrentIndex(index)


def _label(name: str) -> str:
    return {"channels": "Conv channels", "widths": "Stage widths"}.get(name, name)


def _parse_int_list(text: str, lo: int, hi: int, max_len: int) -> tuple[list[int], str | None]:
    """``"16, 32, 64"`` -> [16, 32, 64], or the problem in words."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return [], f"write whole numbers separated by commas, e.g. 16, 32, 64 (got {text!r})"
    if not 1 <= len(values) <= max_len:
        return values, f"give 1 to {max_len} numbers, e.g. 16, 32, 64"
    if any(not lo <= v <= hi for v in values):
        return values, f"each number must be from {lo} to {hi}"
    return values, None


def _parse_lr(text: str) -> tuple[float, str | None]:
    """A learning rate from text (``0.001``, ``1e-3``), or the problem in words."""
    try:
        value = float(text.strip())
    except ValueError:
        return 0.0, f"Learning rate must be a number such as 0.001 or 1e-3 (got {text.strip()!r})."
    if not (math.isfinite(value) and 0 < value <= MAX_LR):
        return value, f"Learning rate must be above 0 and at most {MAX_LR:g} (got {text.strip()})."
    return value, None


def _format_lr(value: float) -> str:
    return f"{float(value):.6g}"
