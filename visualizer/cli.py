"""Command line: ``visualizer`` opens the app; ``visualizer train`` trains headless."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

MODELS = ("mlp", "cnn", "resnet", "transformer", "rnn", "lstm", "gru", "vit")
DATASETS = ("spiral", "moons", "circles", "xor", "blobs", "shapes", "digits",
            "copy", "reverse", "sort", "brackets", "parity", "text")
EXIT_BAD_INPUT = 2
EXIT_NONFINITE = 3  # train: the run went NaN/infinite (the JSON says where)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {'at least 1' if minimum == 1 else f'{minimum} or more'}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _thread_count(text: str) -> int:
    """An argparse type: CPU threads, 1 to the machine's core count (more only slows torch
    down, and tens of thousands crash its thread pool)."""
    import os

    value = _positive_int(text)
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be between 1 and {cores} (this machine's cores), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _output_problem(path: str) -> str | None:
    """Why ``path`` cannot be written (folder missing or read-only, a folder itself), or None."""
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"{path} is a folder; give a file name"
    if not os.path.isdir(folder):
        return f"cannot write {path}: folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"cannot write {path}: folder {folder} is not writable"
    return None


def _option(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE parsed as JSON when it can be (numbers, true/false, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key.strip().replace("-", "_"), value


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a built-in model headless and report metrics",
                       description="Train a built-in model on a built-in dataset without a window.")
    p.add_argument("--model", choices=MODELS, default="cnn", help="architecture (default: cnn)")
    p.add_argument("--data", choices=DATASETS, default="shapes", help="dataset (default: shapes)")
    p.add_argument("--steps", type=_non_negative_int, default=600, help="training steps (batches); default 600")
    p.add_argument("--lr", type=_positive_float, help="learning rate (default: 1e-3 for Adam/AdamW, 0.05 for SGD)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--threads", type=_thread_count, default=None,
                   help="CPU threads for torch (default: all cores but one; small models are fastest on one)")
    p.add_argument("--model-option", "-M", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. -M depth=10 -M activation=sigmoid (repeatable)")
    p.add_argument("--data-option", "-D", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. -D noise=0.3 (repeatable)")
    p.add_argument("--baseline", action="store_true",
                   help="also fit a logistic regression on the raw inputs and report its val_acc (baseline_val_acc)")
    p.add_argument("--layer-probes", action="store_true",
                   help="after training, fit a linear probe on every layer's features of up to 1,000 validation "
                        "samples (5-fold cross-validated) and report the accuracies (layer_probe_acc)")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint (PATH.safetensors and PATH.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results as the last line")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="visualizer", description="Watch a neural network learn, layer by layer.")
    parser.add_argument("--demo", default=None, help="demo run to open (default: cnn-shapes)")
    parser.add_argument("--run-steps", type=_non_negative_int, default=None, metavar="N",
                        help="train N steps, render, optionally save a screenshot, and exit")
    parser.add_argument("--screenshot", metavar="FILE", help="with --run-steps: save a PNG of the window")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="{train,open,export}")
    _train_parser(sub)
    from visualizer.cli_models import add_model_commands

    add_model_commands(sub)
    return parser


def _version() -> str:
    from visualizer import __version__

    return f"visualizer {__version__}"


class _Progress:
    """A one-line progress bar on a terminal; silent when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def show(self, step: int, loss: float, val_acc: float | None, rate: float, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        self.last = now
        width = 30
        filled = int(width * step / max(1, self.total))
        acc = "" if val_acc is None else f"  val_acc {val_acc:.3f}"
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total}  loss {loss:.4f}{acc}  {rate:.0f} steps/s"
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    import torch

    from visualizer.capture.session import TrainingSession, default_threads
    from visualizer.engine.checkpoint import CheckpointError, save_checkpoint
    from visualizer.engine.devices import describe_device
    from visualizer.engine.run import RunSpec, build_trainer
    from visualizer.engine.trainer import TrainConfig

    lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 1e-3)
    spec = RunSpec(
        model=args.model,
        data=args.data,
        model_options=dict(args.model_option),
        data_options=dict(args.data_option),
        config=TrainConfig(optimizer=args.optimizer, lr=lr, batch_size=args.batch_size,
                           weight_decay=args.weight_decay, seed=args.seed),
        device=args.device,
    )
    torch.set_num_threads(args.threads or default_threads())
    try:
        trainer = build_trainer(spec)
    except (ValueError, TypeError) as exc:
        return _fail(f"visualizer train: error: {exc}")
    if trainer.dataset.kind == "sequence" and args.baseline and trainer.per_token:
        return _fail(f"visualizer train: error: --baseline is not available for per-token sequence data ({args.data})")
    session = TrainingSession(trainer)
    progress = _Progress(args.steps)
    losses: list[np.ndarray] = []
    val_acc = None
    nonfinite = False
    started = time.perf_counter()

    def collect() -> None:
        nonlocal val_acc, nonfinite
        frame = session.mailbox.take("train")
        if frame is None:
            return
        losses.append(frame.scalars.values["train_loss"])
        nonfinite = nonfinite or bool(frame.info.get("nonfinite")) or session.divergence is not None
        if frame.val is not None:
            val_acc = frame.val["val_acc"]

    done = 0
    while done < args.steps and not nonfinite:
        chunk = min(args.steps - done, 50)
        done += session.run(chunk)
        session.arm()  # a capture when the cadence allows: progress, and divergence found early
        collect()
        recent = np.concatenate(losses[-3:]) if losses else np.array([math.nan])
        rate = done / max(1e-9, time.perf_counter() - started)
        progress.show(done, float(recent[-1]) if recent.size else math.nan, val_acc, rate, force=done == args.steps)
    progress.close()
    seconds = time.perf_counter() - started
    if not nonfinite:
        session.capture_now()  # final validation and the last scalars
        collect()
    error = session.mailbox.take("error") or {}
    divergence = error.get("nonfinite")
    if nonfinite and divergence is None:  # reported earlier in the run: still a non-finite stop
        divergence = {"step": trainer.step_count, "layer": None, "where": "loss", "rolled_back_to": None}
    all_losses = np.concatenate(losses) if losses else np.zeros(0)
    val_loss_t, val_acc_t = trainer.evaluate()
    tail = all_losses[-min(50, all_losses.size):] if all_losses.size else np.array([math.nan])
    result: dict[str, Any] = {
        "step": trainer.step_count,
        "epoch": round(trainer.epoch, 3),
        "train_loss": float(np.mean(tail)),
        "val_loss": float(val_loss_t),
        "val_acc": float(val_acc_t),
        "seconds": round(seconds, 3),
        "steps_per_s": round(done / max(seconds, 1e-9), 1),
        "model": args.model,
        "data": args.data,
        "device": describe_device(trainer.device),
        "seed": args.seed,
        "init": getattr(trainer.model, "init_scheme", "default"),
    }
    if args.baseline:
        from visualizer.engine.baseline import logistic_baseline

        result["baseline_val_acc"] = logistic_baseline(trainer.dataset)
    if args.layer_probes:
        from visualizer.capture.hierarchy import layer_probes

        probe_started = time.perf_counter()
        n_probe = min(1000, len(trainer.x_val))  # a fixed held-out probe set: the first validation samples
        accuracies = layer_probes(trainer.model, trainer.x_val[:n_probe], trainer.y_val[:n_probe],
                                  layers=session.layer_order)
        result["layer_probe_acc"] = {name: round(acc, 4) for name, acc in accuracies.items()}
        result["layer_probe_samples"] = n_probe
        result["layer_probe_seconds"] = round(time.perf_counter() - probe_started, 3)
    if divergence is not None:
        # the model is back at the last good snapshot; "step" is where the run went non-finite
        result.update(stopped="non-finite", step=divergence["step"], first_nonfinite_layer=divergence["layer"],
                      nonfinite_where=divergence["where"], rolled_back_to=divergence["rolled_back_to"])
        all_losses = all_losses[np.isfinite(all_losses)]
        result["train_loss"] = float(np.mean(all_losses[-50:])) if all_losses.size else math.nan
    if args.save:
        try:
            path = save_checkpoint(args.save, trainer.model, {
                "model": trainer.model.spec,
                "data": trainer.dataset.describe(),
                "run": spec.to_dict(),
                "metrics": {k: result[k] for k in ("step", "train_loss", "val_loss", "val_acc")},
            })
        except CheckpointError as exc:
            return _fail(f"visualizer train: error: {exc}")
        result["saved"] = str(path)
    if args.json:
        print(json.dumps(_finite(result)))
    else:
        if divergence is not None:
            print(f"visualizer train: {error.get('message', 'training stopped: a loss became NaN or infinite')}",
                  file=sys.stderr)
        print(f"step {result['step']}  train_loss {result['train_loss']:.4f}  val_loss {result['val_loss']:.4f}  "
              f"val_acc {result['val_acc']:.3f}  ({result['steps_per_s']} steps/s on {result['device']})")
        if "baseline_val_acc" in result:
            print(f"logistic regression on raw inputs: val_acc {result['baseline_val_acc']:.3f}")
        if "layer_probe_acc" in result:
            print(f"linear probe accuracy per layer ({result['layer_probe_samples']} validation samples, "
                  f"5-fold cross-validated, {result['layer_probe_seconds']:.1f} s):")
            width = max(len(name) for name in result["layer_probe_acc"])
            for name, acc in result["layer_probe_acc"].items():
                print(f"  {name:<{width}}  {acc:.3f}  {'#' * round(acc * 40)}")
        if "saved" in result:
            print(f"saved {result['saved']}")
    return EXIT_NONFINITE if divergence is not None else 0


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: non-finite floats become null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_BAD_INPUT


def run_app(args: argparse.Namespace) -> int:
    try:
        from visualizer.ui.app import launch
    except ImportError as exc:
        return _fail(f"visualizer: the desktop app cannot start ({exc}); try 'visualizer train --help' for headless training")
    return launch(demo=args.demo, run_steps=args.run_steps, screenshot=args.screenshot)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.screenshot and args.run_steps is None:
        parser.error("--screenshot needs --run-steps N")
    for flag, path in (("--screenshot", args.screenshot), ("--save", getattr(args, "save", None))):
        problem = path and _output_problem(path)
        if problem:
            parser.error(f"{flag}: {problem} (give a path in an existing, writable folder)")
    if args.demo is not None:
        from visualizer.ui.runner import DEMOS

        if args.demo not in DEMOS:
            parser.error(f"--demo: unknown demo {args.demo!r}; choose one of {', '.join(DEMOS)}")
    func = getattr(args, "func", None)
    if func is None:
        return run_app(args)
    return func(args)
