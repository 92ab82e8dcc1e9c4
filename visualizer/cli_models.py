"""``visualizer open PATH`` and ``visualizer export PATH --out FILE.npz``: models from files."""
from __future__ import annotations

import argparse
import io
import sys
from typing import Any

EXIT_BAD_INPUT = 2


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1,8,8, got {text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"sizes must be positive whole numbers, got {text!r}")
    return shape


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="checkpoint (.safetensors), state dict (.pt/.pth), exported program (.pt2), "
                                "TorchScript file, or a Transformers folder")
    p.add_argument("--trust", action="store_true",
                   help="allow a whole pickled module (loading it can run code from the file: only for files you trust)")
    p.add_argument("--arch", choices=("mlp", "cnn", "resnet"), help="built-in architecture of a plain state dict")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="input shape of one sample, e.g. 1,8,8")
    p.add_argument("--num-classes", type=int, help="number of classes (default: read from the weights)")
    from visualizer.cli import _option

    p.add_argument("--model-option", "-M", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="option of the built-in architecture of a state dict, e.g. -M channels=[8,16] (repeatable)")


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``open`` and ``export`` sub-commands."""
    from visualizer.cli import DATASETS, _positive_int

    p = sub.add_parser("open", help="open a model file in the app to inspect it",
                       description="Open a model file in the app (inspect mode: no training until you press play).")
    _model_arguments(p)
    p.add_argument("--data", choices=DATASETS, help="built-in dataset to inspect it with (default: its own)")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("export", help="write a model's outputs, activations, attention and attributions to .npz",
                       description="Run a model on inputs and write its internals to a .npz file, without a window.")
    _model_arguments(p)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", choices=DATASETS, help="built-in dataset: its first validation samples")
    source.add_argument("--input", metavar="FILE", help="an image (PNG/JPEG, resized to the model's input) or a .npy array")
    source.add_argument("--text", help="text: tokenised with a Transformers model's tokenizer, or symbol by symbol "
                                       "for a model trained on a built-in sequence dataset (e.g. '3 1 4 1')")
    p.add_argument("--samples", type=_positive_int, default=16, help="samples taken from --data (default 16)")
    p.add_argument("--attribution", action="append", default=[], metavar="METHOD",
                   help="attribution method: saliency, integrated_gradients, gradient_shap, deeplift, occlusion, "
                        "grad_cam or smoothgrad (repeatable; token inputs: saliency, integrated_gradients, "
                        "deeplift, occlusion)")
    p.add_argument("--target", type=int, help="class to attribute (default: the predicted class)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the arrays")
    p.set_defaults(func=cmd_export)


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_BAD_INPUT


def _load(args: argparse.Namespace) -> Any:
    from visualizer.engine.loading import load_model

    options = dict(args.model_option) or None
    return load_model(args.path, trust=args.trust, arch=args.arch, input_shape=args.input_shape,
                      num_classes=args.num_classes, options=options)


def _inputs(args: argparse.Namespace, loaded: Any) -> Any:
    from visualizer.engine.data import make_dataset
    from visualizer.engine.inputs import read_input_file

    if args.text is not None:
        return args.text
    if args.input is not None:
        return read_input_file(args.input, loaded.input_shape)
    name = args.data or loaded.data_name
    if name is None:
        raise ValueError("say what to run the model on: --data NAME, --input FILE or --text \"...\"")
    described = loaded.description.get("data") if isinstance(loaded.description.get("data"), dict) else {}
    params = dict(described.get("params") or {}) if described.get("name") == name else {}
    return make_dataset(name, **params).x_val[: args.samples]


def cmd_export(args: argparse.Namespace) -> int:
    """Write ``output``, ``activations/<layer>``, ``attention/<layer>``, ``attribution/<method>``."""
    from pathlib import Path

    import numpy as np
    import torch

    from visualizer.capture.internals import capture_internals
    from visualizer.engine.loading import LoadError
    from visualizer.files import atomic_write

    out = Path(args.out)
    if out.suffix != ".npz":
        return _fail(f"visualizer export: error: --out must end in .npz, got {out.name}")
    if not out.parent.is_dir():
        return _fail(f"visualizer export: error: cannot write {out}: folder {out.parent} does not exist")
    torch.set_num_threads(1)
    try:
        loaded = _load(args)
        inputs = _inputs(args, loaded)
        result = capture_internals(loaded, inputs, attribution=args.attribution, target=args.target)
    except (LoadError, ValueError) as exc:
        return _fail(f"visualizer export: error: {exc}")
    except RuntimeError as exc:  # a shape the model cannot take
        return _fail(f"visualizer export: error: the model cannot run on these inputs ({str(exc).splitlines()[0]})")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **result.arrays)
    try:
        atomic_write(out, buffer.getvalue())
    except OSError as exc:
        return _fail(f"visualizer export: error: cannot write {out}: {exc.strerror or exc}")
    for note in result.notes:
        print(f"not exported: {note}")
    print(f"wrote {len(result.arrays)} arrays to {out} ({loaded.kind}, {len(result.arrays['output'])} inputs)")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    """Load first (errors: one line, exit 2), then start the app on the model."""
    from visualizer.engine.loading import LoadError

    try:
        loaded = _load(args)
    except LoadError as exc:
        return _fail(f"visualizer open: error: {exc}")
    try:
        from visualizer.ui.app import launch
    except ImportError as exc:
        return _fail(f"visualizer: the desktop app cannot start ({exc}); try 'visualizer export --help'")
    return launch(run_steps=args.run_steps, screenshot=args.screenshot, loaded=loaded, data=args.data)
