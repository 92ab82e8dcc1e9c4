"""Open models trained elsewhere: detect the format, load it safely, describe it.

Formats: the project's checkpoints (safetensors + JSON), plain state dicts for a built-in
architecture, exported programs (``torch.export``, ``.pt2``), TorchScript, a local Hugging
Face Transformers directory (optional extra ``visualizer[hf]``) and, only with
``trust=True``, a whole pickled module. Nothing from a file runs as Python code unless the
person trusts it: ``torch.load`` is called with ``weights_only=True`` and safetensors
never holds code.

A *sidecar* (``<file>.visualizer.json``, or ``visualizer.json`` inside a directory)
stores what the app cannot guess: input shape, class names, normalisation, dataset,
architecture. Every failure raises :class:`LoadError` with a one-line message.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visualizer.files import atomic_write

KINDS = ("checkpoint", "state_dict", "exported", "torchscript", "hf", "pickle")
SIDECAR_KEYS = ("arch", "input_shape", "num_classes", "options", "class_names", "normalisation", "data")


class LoadError(ValueError):
    """A model file that cannot be opened; the message says why in one line."""


@dataclass
class LoadedModel:
    """A model opened from a file, with what is known about it.

    ``capture`` names what can be captured ("activations", "gradients", "filters",
    "output", "input_gradient", "attention"); ``unavailable`` says in plain words what
    cannot, and why.
    """

    module: nn.Module
    kind: str
    path: Path
    description: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    class_names: list[str] | None = None
    normalisation: dict[str, list[float]] | None = None
    capture: tuple[str, ...] = ("activations", "gradients", "filters", "output", "input_gradient")
    unavailable: list[str] = field(default_factory=list)
    tokenizer: Any = None

    @property
    def tokens(self) -> list[str] | None:
        """The symbol of each token id for a model trained on a built-in sequence dataset, else None."""
        data = self.description.get("data")
        if isinstance(data, dict) and data.get("tokens"):
            return [str(t) for t in data["tokens"]]
        return None

    @property
    def data_name(self) -> str | None:
        """The built-in dataset the model was trained on, if known."""
        data = self.description.get("data")
        return data.get("name") if isinstance(data, dict) else data if isinstance(data, str) else None


# ---------------------------------------------------------------------------- sidecars
def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the answers for ``path`` are kept."""
    path = Path(path)
    return path / "visualizer.json" if path.is_dir() else path.with_name(path.name + ".visualizer.json")


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The saved answers for ``path`` ({} if none); LoadError if the sidecar is unreadable."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{side.name} (the saved description of {Path(path).name}) is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LoadError(f"{side.name} should hold a JSON object, not {type(data).__name__}")
    return data


def write_sidecar(path: str | os.PathLike[str], answers: dict[str, Any]) -> Path:
    """Save ``answers`` (keys from ``SIDECAR_KEYS``) beside ``path``, atomically."""
    unknown = sorted(set(answers) - set(SIDECAR_KEYS))
    if unknown:
        raise ValueError(f"unknown description key(s) {', '.join(unknown)}; allowed: {', '.join(SIDECAR_KEYS)}")
    side = sidecar_path(path)
    try:
        atomic_write(side, json.dumps(answers, indent=2).encode())
    except OSError as exc:
        raise LoadError(f"cannot write {side}: {exc.strerror or exc}") from None
    return side


# ---------------------------------------------------------------------------- detection
def detect_format(path: str | os.PathLike[str]) -> str:
    """One of ``KINDS`` (checkpoint vs state_dict is decided when reading), or LoadError."""
    path = Path(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf"
        raise LoadError(f"{path.name} is a folder without config.json: not a Transformers model directory")
    if not path.is_file():
        raise LoadError(f"cannot open {path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise LoadError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        return "checkpoint"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise LoadError(f"{path.name} looks like a zip archive but is damaged ({exc})") from None
        if any(n.endswith("/archive_format") or n.endswith("serialized_exported_program.json") for n in names):
            return "exported"
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "state_dict"  # a torch.save archive: a state dict, or a pickle that needs trust
        raise LoadError(f"{path.name} is a zip archive that holds no PyTorch model")
    if head[:1] == b"\x80":  # a legacy (non-zip) pickle
        return "state_dict"
    raise LoadError(f"{path.name} is not a model file this app knows (expected .safetensors, .pt/.pth, .pt2, "
                    "TorchScript, or a Transformers folder)")


# ---------------------------------------------------------------------------- loading
def load_model(path: str | os.PathLike[str], trust: bool = False, **answers: Any) -> LoadedModel:
    """Open the model at ``path``; ``answers`` override the sidecar (e.g. ``arch="cnn"``,
    ``input_shape=(1, 8, 8)``, ``class_names=[...]``).

    Raises LoadError with a one-line message for anything wrong: a missing, truncated,
    corrupt or unrecognised file, weights that do not fit, a pickle that needs trust, or
    a missing optional dependency.
    """
    path = Path(path)
    kind = detect_format(path)
    extra = {**read_sidecar(path), **{k: v for k, v in answers.items() if v is not None}}
    try:
        if kind == "hf":
            loaded = _load_hf(path)
        elif kind == "checkpoint":
            loaded = _load_safetensors(path, extra)
        elif kind == "exported":
            loaded = _load_exported(path)
        elif kind == "torchscript":
            loaded = _load_torchscript(path)
        else:
            loaded = _load_torch_file(path, trust, extra)
    except LoadError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, EOFError, OSError, AttributeError, IndexError,
            zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"cannot open {path.name} as {_KIND_WORDS[kind]}: {_first_line(exc)}") from None
    try:
        _apply_answers(loaded, extra)
    except LoadError as exc:
        raise LoadError(f"the description of {path.name} (its {sidecar_path(path).name} or its own) is wrong: {exc}") from None
    loaded.module.eval()
    return loaded


_KIND_WORDS = {"checkpoint": "a checkpoint", "state_dict": "a PyTorch file", "exported": "an exported program",
               "torchscript": "a TorchScript file", "hf": "a Transformers model", "pickle": "a pickled module"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def _apply_answers(loaded: LoadedModel, extra: dict[str, Any]) -> None:
    desc = loaded.description
    data = desc.get("data") if isinstance(desc.get("data"), dict) else {}
    shape = extra.get("input_shape") or (desc.get("model") or {}).get("input_shape") or data.get("input_shape")
    if shape is not None:
        try:
            loaded.input_shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise LoadError(f"input shape must be a list of whole numbers, got {shape!r}") from None
    names = extra.get("class_names") or data.get("class_names")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, (str, int, float)) for n in names):
            raise LoadError(f"class_names must be a list of names, got {_short(names)}")
        loaded.class_names = [str(n) for n in names]
    if extra.get("normalisation"):
        loaded.normalisation = _normalisation(extra["normalisation"])
    if extra.get("data") and not desc.get("data"):
        desc["data"] = {"name": extra["data"]} if isinstance(extra["data"], str) else extra["data"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(value: Any) -> list[float] | None:
    """A number or a list of numbers as a list of floats; None if it is neither."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        return None
    return [float(v) for v in items]


def _normalisation(value: Any) -> dict[str, list[float]]:
    """``{"mean": [...], "std": [...]}`` checked: numbers (one, or one per channel), std > 0."""
    if not isinstance(value, dict) or not set(value) <= {"mean", "std"}:
        raise LoadError(f'normalisation must be {{"mean": [...], "std": [...]}}, got {_short(value)}')
    out = {}
    for key, default in (("mean", [0.0]), ("std", [1.0])):
        numbers = _numbers(value.get(key, default))
        if numbers is None or (key == "std" and min(numbers) <= 0):
            raise LoadError(f"normalisation {key} must be {'positive ' if key == 'std' else ''}numbers "
                            f"(one, or one per channel), got {_short(value.get(key))}")
        out[key] = numbers
    return out


def _spec_from(extra: dict[str, Any]) -> dict[str, Any]:
    """Architecture, input shape, classes and options from the answers (a dataset name gives the
    input shape and classes)."""
    spec = {k: extra.get(k) for k in ("arch", "input_shape", "num_classes", "options")}
    if spec["options"] is not None and not isinstance(spec["options"], dict):
        raise LoadError(f'options must be a mapping of model options ({{"depth": 4, ...}}), got {_short(spec["options"])}')
    data = extra.get("data")
    if isinstance(data, str) and (spec["input_shape"] is None or spec["num_classes"] is None):
        from visualizer.engine.data import make_dataset

        ds = make_dataset(data)
        spec["input_shape"] = spec["input_shape"] or list(ds.input_shape)
        spec["num_classes"] = spec["num_classes"] or ds.num_classes
    return spec


def _build_builtin(path: Path, state: dict[str, torch.Tensor], spec: dict[str, Any]) -> nn.Module:
    """Build a built-in architecture from ``spec`` and load ``state`` strictly (mismatches listed)."""
    from visualizer.engine.checkpoint import state_problems
    from visualizer.engine.models import MODELS, build_model

    arch = spec.get("arch")
    if arch is None:
        raise LoadError(f"{path.name} holds only weights: say which built-in architecture they belong to "
                        f"({', '.join(MODELS)}) and the input shape")
    if spec.get("input_shape") is None:
        raise LoadError(f"{path.name}: the input shape of the {arch} model is needed (e.g. 1,8,8 for digits)")
    num_classes = spec.get("num_classes") or _guess_classes(state)
    try:
        model = build_model(arch, tuple(spec["input_shape"]), int(num_classes), **(spec.get("options") or {}))
    except (ValueError, TypeError) as exc:
        raise LoadError(f"cannot build {arch!r} for {path.name}: {exc}") from None
    problems = state_problems(model, state)
    if problems:
        raise LoadError(f"the weights in {path.name} do not fit the {arch} model ({'; '.join(problems)})")
    model.load_state_dict(state)
    return model


def _guess_classes(state: dict[str, torch.Tensor]) -> int:
    """The output size of the last 2-D weight in a state dict (the classifier's rows)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not weights:
        raise LoadError("cannot tell the number of classes from the weights; please give it")
    return int(weights[-1].shape[0])


def _load_safetensors(path: Path, extra: dict[str, Any]) -> LoadedModel:
    from visualizer.engine.checkpoint import CheckpointError, load_checkpoint, read_checkpoint

    try:
        model, desc = load_checkpoint(path)
        return LoadedModel(model, "checkpoint", path, desc)
    except CheckpointError as exc:
        if "no description" not in str(exc):
            raise LoadError(str(exc)) from None
    state, _ = _read_bare_safetensors(path)
    model = _build_builtin(path, state, _spec_from(extra))
    return LoadedModel(model, "state_dict", path, {"model": model.spec})


def _read_bare_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}


def _load_torch_file(path: Path, trust: bool, extra: dict[str, Any]) -> LoadedModel:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad or unsafe pickle
        unsafe = isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc).lower()
        if not unsafe:
            raise LoadError(f"cannot open {path.name}: it is damaged or not a PyTorch file ({_first_line(exc)})") from None
        if not trust:
            raise LoadError(f"{path.name} holds Python objects whose loading can run code; it was not loaded. "
                            "Open it with --trust (or confirm in the app) only if you trust where it came from") from None
        return _load_pickle(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not (isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise LoadError(f"{path.name} holds a {type(obj).__name__}, not a state dict of tensors")
    model = _build_builtin(path, obj, _spec_from(extra))
    return LoadedModel(model, "state_dict", path, {"model": model.spec})


def _load_pickle(path: Path) -> LoadedModel:
    """A whole pickled module; only reached with trust=True."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, nn.Module):
        raise LoadError(f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module")
    return LoadedModel(obj, "pickle", path, {})


def _load_torchscript(path: Path) -> LoadedModel:
    scripted = torch.jit.load(str(path), map_location="cpu")
    return LoadedModel(ScriptedModel(scripted), "torchscript", path, {},
                       capture=("output", "input_gradient", "filters"),
                       unavailable=["per-layer activations and gradients: forward hooks cannot be attached to a "
                                    "TorchScript module (only its output, its parameters and input-level "
                                    "attribution are available)"])


def _load_exported(path: Path) -> LoadedModel:
    from visualizer.engine.exported import ExportedModel

    import warnings

    with warnings.catch_warnings():  # torch's own deprecation notices about its pytree specs, not the person's file
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.export.load(str(path))
    return LoadedModel(ExportedModel(program), "exported", path, {})


def _load_hf(path: Path) -> LoadedModel:
    try:
        import transformers
    except ImportError:
        raise LoadError("opening a Transformers folder needs the optional extra: pip install 'visualizer[hf]'") from None
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
        archs = getattr(config, "architectures", None) or []
        cls = getattr(transformers, archs[0], None) if archs else None
        cls = cls or transformers.AutoModel
        model = cls.from_pretrained(str(path), local_files_only=True, attn_implementation="eager")
    except Exception as exc:  # noqa: BLE001 - transformers and safetensors raise many types for a bad folder
        raise LoadError(f"cannot open {path.name} as a Transformers model: {_first_line(exc)}") from None
    tokenizer = None
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - a missing or damaged tokenizer only costs text input
        unavailable = [f"text input: no usable tokenizer in {path.name} ({_first_line(exc)})"]
    else:
        unavailable = []
    labels = getattr(config, "id2label", None)
    names = [labels[i] for i in sorted(labels)] if isinstance(labels, dict) and labels else None
    from visualizer.engine.transformers_model import TransformersModel

    return LoadedModel(TransformersModel(model, tokenizer), "hf", path, {"model": {"arch": type(model).__name__}},
                       class_names=names, capture=("activations", "gradients", "output", "attention"),
                       unavailable=unavailable, tokenizer=tokenizer)


class ScriptOutput(nn.Module):
    """The output of a TorchScript model, as a leaf that hooks can see."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ScriptedModel(nn.Module):
    """A TorchScript module behind a plain module with no hookable children.

    Hooks cannot be attached to a loaded ScriptModule, so the scripted module is kept out
    of the module tree; ``parameters()`` still reaches its weights (for gradients, filters,
    fine-tuning) and the one leaf ``output`` shows what it returns.
    """

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        object.__setattr__(self, "scripted", scripted)
        self.output = ScriptOutput()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.scripted(x))

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):  # type: ignore[override]
        if not recurse:
            return iter(())
        return ((prefix + name, p) for name, p in self.scripted.named_parameters())

    def parametrised_modules(self) -> dict[str, Any]:
        """Submodules of the scripted model that own weights, by dotted name."""
        return {n: m for n, m in self.scripted.named_modules() if hasattr(m, "weight")}

    def train(self, mode: bool = True) -> ScriptedModel:
        super().train(mode)
        self.scripted.train(mode)
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> ScriptedModel:  # .to(device) reaches the scripted weights
        self.scripted._apply(fn)
        return super()._apply(fn)
