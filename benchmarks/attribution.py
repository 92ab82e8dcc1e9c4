"""``gradcam_ms`` / ``ig32_ms``: Layer Grad-CAM on the last conv layer and Integrated
Gradients (32 steps) for one input to the shapes CNN, target = the predicted class."""
from __future__ import annotations

from torch import nn

from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Summary, Threads, timed_repeats
from benchmarks.workloads import CNN_SHAPES, Workload, run_each

KEYS = ("gradcam_ms", "ig32_ms")
TRAIN_STEPS = 20
IG_STEPS = 32


def last_conv(model: nn.Module) -> nn.Module:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer")
    return convs[-1]


def measure(workload: Workload, opts: Options) -> list[Result]:
    from captum.attr import IntegratedGradients, LayerGradCam  # heavy: imported when first used

    with Threads(opts.threads):
        trainer = workload.build(opts.device)
        trainer.run(TRAIN_STEPS)
        model = trainer.model.eval()
        x = trainer.x_val[:1]
        target = int(model(x).argmax(1))
        gradcam = LayerGradCam(model, last_conv(model))
        ig = IntegratedGradients(model)
        timings = {
            "gradcam_ms": timed_repeats(lambda: gradcam.attribute(x, target=target), opts.repeats, opts.device),
            "ig32_ms": timed_repeats(lambda: ig.attribute(x, target=target, n_steps=IG_STEPS), opts.repeats, opts.device),
        }
    note = f"median of {opts.repeats} after a warm-up; model trained {TRAIN_STEPS} steps"
    return [Result.summarised(key, workload.key, Summary.of(ms), opts.device_type, opts.threads, note)
            for key, ms in timings.items()]


def run(opts: Options) -> list[Result]:
    return run_each("attribution", KEYS, opts, lambda w: measure(w, opts), workloads=(CNN_SHAPES,))
