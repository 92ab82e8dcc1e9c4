"""Train the shipped example models from the built-in datasets and write them to resources/examples/.

Run from the repository root:  python resources/make_examples.py  (or  python -m resources.make_examples).
Deterministic (fixed seeds, one CPU thread); each file is a project checkpoint
(``NAME.safetensors`` + ``NAME.json``) that File > Open Example and ``visualizer open`` read.
Adding an example is one entry in ``EXAMPLES``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# name -> (run spec as in the app's demos, training steps); "warmup" (steps of linear warm-up,
# then cosine decay of the learning rate to zero) is a setting of this script, not of the run.
EXAMPLES: dict[str, tuple[dict, int]] = {
    "cnn-shapes": ({"model": "cnn", "data": "shapes", "model_options": {"channels": [8, 16, 32], "hidden": 64},
                    "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}}, 600),
    "cnn-digits": ({"model": "cnn", "data": "digits", "model_options": {"channels": [16, 32], "hidden": 64},
                    "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}}, 800),
    "transformer-reverse": ({"model": "transformer", "data": "reverse",
                             "model_options": {"num_layers": 2, "num_heads": 2, "d_model": 32, "ff_width": 64},
                             "config": {"optimizer": "adam", "lr": 3e-3, "batch_size": 64}, "warmup": 50}, 800),
    # A ViT has no convolutional prior, so it needs more distinct images than a CNN: with the default 6000 it
    # overfits near 0.64; with 24000 (3 s to generate) and 8x8 patches it passes 0.85 in 3500 steps.
    "vit-shapes": ({"model": "vit", "data": "shapes", "data_options": {"n_train": 24000},
                    "model_options": {"patch_size": 8, "num_layers": 3, "num_heads": 4, "d_model": 64, "ff_width": 128},
                    "config": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64}, "warmup": 150}, 3500),
}


def learning_rate(base: float, step: int, steps: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``steps``."""
    if warmup <= 0:
        return base
    return base * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))


def make_example(name: str, out_dir: Path) -> dict:
    """Train example ``name`` and save it; returns its metrics."""
    import torch

    from visualizer.engine.checkpoint import save_checkpoint
    from visualizer.engine.run import RunSpec, build_trainer

    spec_dict, steps = EXAMPLES[name]
    spec_dict = dict(spec_dict)
    warmup = int(spec_dict.pop("warmup", 0))
    spec = RunSpec.from_dict({**spec_dict, "device": "cpu"})
    trainer = build_trainer(spec)
    for step in range(steps):
        if warmup:
            for group in trainer.optimizer.param_groups:
                group["lr"] = learning_rate(spec.config.lr, step, steps, warmup)
        trainer.step()
    val_loss, val_acc = trainer.evaluate()
    metrics = {"step": trainer.step_count, "val_loss": round(float(val_loss), 4), "val_acc": round(float(val_acc), 4)}
    save_checkpoint(out_dir / f"{name}.safetensors", trainer.model.cpu(), {
        "model": trainer.model.spec, "data": trainer.dataset.describe(), "run": spec.to_dict(),
        "metrics": metrics, "example": name,
        **({"schedule": {"warmup_steps": warmup, "decay": "cosine to zero", "steps": steps}} if warmup else {}),
    })
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*EXAMPLES, []], help="examples to make (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "examples")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(EXAMPLES):
        started = time.perf_counter()
        metrics = make_example(name, args.out)
        size = (args.out / f"{name}.safetensors").stat().st_size
        print(f"{name}: val_acc {metrics['val_acc']:.3f} after {metrics['step']} steps, "
              f"{size / 1024:.0f} KiB, {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
