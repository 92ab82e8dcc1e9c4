"""``gradcam_ms`` / ``ig32_ms``: Layer Grad-CAM on the last conv layer and Integrated
Gradients (32 steps) for one input to the shapes CNN, target = the predicted class, through
:func:`visualizer.capture.attribution.attribute` (snapshot of the weights included).

``throughput_ratio_live_attribution``: training speed while the Attribution panel's live
mode refreshes (its default methods on one probe sample, requested through the session as
the panel does, again as soon as the last answer is in and its refresh interval has
passed), against the same session training without it; windows interleaved, A/B."""
from __future__ import annotations

import time

from benchmarks.loops import CapturedLoop
from benchmarks.options import Options
from benchmarks.report import Result
from benchmarks.timing import Summary, Threads, interleave, ratios, run_for, timed_repeats
from benchmarks.workloads import CNN_SHAPES, MLP_SPIRAL, Workload, run_each

KEYS = ("gradcam_ms", "ig32_ms", "throughput_ratio_live_attribution")
TRAIN_STEPS = 20
IG_STEPS = 32
LIVE_NAME = "attribution"


def measure(workload: Workload, opts: Options) -> list[Result]:
    from visualizer.capture.attribution import attribute, last_conv

    with Threads(opts.threads):
        trainer = workload.build(opts.device)
        trainer.run(TRAIN_STEPS)
        model = trainer.model
        x = trainer.x_val[:1]
        layer = last_conv(model)
        timings = {
            "gradcam_ms": timed_repeats(lambda: attribute(model, x, "grad_cam", layer=layer), opts.repeats, opts.device),
            "ig32_ms": timed_repeats(lambda: attribute(model, x, "integrated_gradients", steps=IG_STEPS),
                                     opts.repeats, opts.device),
        }
    note = f"median of {opts.repeats} after a warm-up; model trained {TRAIN_STEPS} steps; snapshot included"
    return [Result.summarised(key, workload.key, Summary.of(ms), opts.device_type, opts.threads, note)
            for key, ms in timings.items()]


class LiveRefresh:
    """The panel's live mode without the panel: request its default attribution for probe
    sample 0, and again once the answer is in and ``max(interval, 2 x last duration)`` passed
    (the rule of :class:`~visualizer.ui.widgets.analysis_controls.AutoRefresh`)."""

    def __init__(self, session, methods: list[str], interval_s: float) -> None:
        self.session, self.methods, self.interval_s = session, methods, interval_s
        self.asked_at = -float("inf")
        self.duration = 0.0
        self.busy = False
        self.done = 0

    def answered(self) -> None:
        """Take the answer, if one came."""
        update = self.session.mailbox.take(f"analysis:{LIVE_NAME}")
        if update is not None and update.state in ("done", "error", "cancelled"):
            if update.state == "error":
                raise RuntimeError(update.message)
            self.busy, self.duration = False, time.monotonic() - self.asked_at
            self.done += 1

    def poll(self) -> None:
        self.answered()
        now = time.monotonic()
        if not self.busy and now - self.asked_at >= max(self.interval_s, 2 * self.duration):
            self.session.request_analysis(LIVE_NAME, "attribution", {"methods": self.methods, "samples": [0]})
            self.asked_at, self.busy = now, True


def measure_live(workload: Workload, opts: Options) -> list[Result]:
    from visualizer.ui.panels.attribution import DEFAULT_METHODS, REFRESH_S  # plain constants (imports Qt)

    kind = "image" if workload.data in ("shapes", "digits") else "features"
    methods = list(DEFAULT_METHODS[kind])
    window = 2 * opts.app_window_s  # several refreshes per window
    with Threads(opts.threads):
        loop = CapturedLoop(workload.build(opts.device))
        session = loop.session
        live = LiveRefresh(session, methods, REFRESH_S)

        def step() -> None:  # as the worker's loop steps: controls applied between steps, capture armed
            session.arm()
            session.run(1)
            session.mailbox.take("train")

        def with_live() -> None:
            live.poll()
            step()

        run_for(step, opts.warmup_s, opts.device)

        run_for(with_live, opts.warmup_s, opts.device)  # first request: Captum's import, the first snapshot
        refreshes = 0

        def live_window() -> float:
            nonlocal refreshes
            before = live.done
            n, elapsed = run_for(with_live, window, opts.device)
            refreshes += live.done - before
            return n / elapsed

        def quiet_window() -> float:
            while live.busy:  # the last window's refresh must not run into this one
                time.sleep(0.01)
                live.answered()
            live.asked_at = -float("inf")  # the next live window starts with a request
            n, elapsed = run_for(step, window, opts.device)
            return n / elapsed

        quiet, with_refresh = interleave([quiet_window, live_window], opts.pairs)
        while live.busy:
            time.sleep(0.01)
            live.answered()
        session.close()
    rate = refreshes / (window * opts.pairs)
    note = (f"{', '.join(methods)} on one probe sample, {rate:.2f} refreshes/s; capture armed in both; "
            "analysis thread beside the training thread, as in the worker process")
    return [Result.summarised("throughput_ratio_live_attribution", workload.key,
                              Summary.of(ratios(with_refresh, quiet)), opts.device_type, opts.threads, note,
                              refreshes_per_s=rate, steps_s=Summary.of(quiet).value)]


def run(opts: Options) -> list[Result]:
    one_shot = run_each("attribution", KEYS[:2], opts, lambda w: measure(w, opts), workloads=(CNN_SHAPES,))
    live = run_each("attribution", KEYS[2:], opts, lambda w: measure_live(w, opts), workloads=(MLP_SPIRAL, CNN_SHAPES))
    return one_shot + live
