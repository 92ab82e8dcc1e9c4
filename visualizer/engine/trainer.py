"""The training loop: one batch per ``step()``, hyperparameter commands applied between steps.

Per-step loss and accuracy stay on the device and reach the host only when someone
calls :meth:`Trainer.drain_scalars`, so an uncaptured step never synchronises with the
host. A step only keeps references to its loss, logits and labels; accuracy is computed
for many steps at once when the rows are read (on a 1 ms MLP step, computing it per step
cost 5 % of the training speed).
"""
from __future__ import annotations

import copy
import math
import queue
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visualizer.engine.data.base import Dataset
from visualizer.engine.devices import pick_device
from visualizer.engine.outputs import first_tensor

OPTIMIZERS = ("sgd", "adam", "adamw")
# Evaluation chunks on the CPU hold at most this many input values (1 MiB of float32): a chunk
# of 32x32 RGB images then stays in cache (512 shapes images: 213 ms in one batch, 125 ms in
# chunks of 85); small inputs (points, token ids) still go in chunks of up to ``batch`` rows.
CPU_EVAL_VALUES = 1 << 18
SETTABLE = ("lr", "optimizer", "batch_size", "weight_decay", "momentum", "dropout", "frozen")


@dataclass
class TrainConfig:
    """Hyperparameters of a run; every field but ``seed`` can change while it runs."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0

    def validated(self) -> TrainConfig:
        """This config, or ValueError saying which value is out of range and what is allowed."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError(f"learning rate must be a number in (0, 10], got {self.lr!r}")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65536):
            raise ValueError(f"batch size must be a whole number from 1 to 65536, got {self.batch_size!r}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1):
            raise ValueError(f"weight decay must be in [0, 1], got {self.weight_decay!r}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise ValueError(f"seed must be a non-negative whole number, got {self.seed!r}")
        return self


@dataclass(frozen=True)
class Command:
    """A change requested from another thread: a ``SETTABLE`` name with a value, or "reset"."""

    name: str
    value: Any = None


class StepObserver(Protocol):
    """Called inside an armed step: after backward (gradients ready) and after the update."""

    def after_backward(self, model: nn.Module) -> None: ...

    def after_update(self, model: nn.Module) -> None: ...


def token_loss(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for logits (N, K) with labels (N,), or per token: (N, T, K) with (N, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction=reduction)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    """A seeded generator on ``device`` (so shuffling needs no host-to-device copy), or on the CPU."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except (RuntimeError, TypeError):
        return torch.Generator().manual_seed(seed)


def _hit_rate(logits: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """Per-step accuracy of equally shaped steps' logits against their labels (stack raises otherwise)."""
    hits = torch.stack(logits).max(-1).indices == torch.stack(labels)  # argmax (the first largest), 30 % faster on few classes
    return hits.reshape(len(logits), -1).float().mean(1)


class Trainer:
    """Trains ``model`` on ``dataset`` with cross-entropy, one batch per :meth:`step`."""

    SCALARS = ("train_loss", "train_acc", "lr")

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        config: TrainConfig | None = None,
        device: torch.device | str | None = None,
        buffer_steps: int = 1024,
    ) -> None:
        self.config = replace(config or TrainConfig()).validated()
        self.device = pick_device(device) if isinstance(device, (str, type(None))) else device
        self.dataset = dataset
        self.model = model.to(self.device)
        self.x_train = dataset.x_train.to(self.device)
        self.y_train = dataset.y_train.to(self.device)
        self.x_val = dataset.x_val.to(self.device)
        self.y_val = dataset.y_val.to(self.device)
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.per_token = self.y_train.dim() > 1  # labels (N, T): one class per position
        self._initial_state = copy.deepcopy(self.model.state_dict())
        self._max_block_steps = max(1, int(buffer_steps))
        self._start()

    # ----------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        """(Re)start from the initial weights with a fresh optimizer and data order."""
        torch.manual_seed(self.config.seed)
        self._data_gen = _generator(self.device, self.config.seed)
        self.step_count = 0
        self.samples_seen = 0
        self._perm = self._new_permutation()
        self._pos = 0
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # recent steps' loss, logits, labels
        self._pending_elements = 0
        self._rows: list[torch.Tensor] = []  # (n, 2) device blocks of (loss, accuracy) not yet read
        self.blocks_closed = 0  # blocks of kept steps reduced so far (the benchmarks file steps by it)
        self._lr_log: list[tuple[int, float]] = [(1, self.config.lr)]  # (first step, lr): lr moves only by command
        self._first_unread_step = 1
        self.optimizer = self._make_optimizer()

    @property
    def initial_state(self) -> dict[str, torch.Tensor]:
        """The weights the run started from (for a loaded model: as loaded)."""
        return self._initial_state

    def reset(self) -> None:
        """Back to the weights this run started with (same seed, same data order)."""
        self.model.load_state_dict(self._initial_state)
        self._start()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c, params = self.config, [p for p in self.model.parameters() if p.requires_grad]
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        # The fused kernels keep the step count on the device: the plain ones call .item().
        fusable = self.device.type in ("cpu", "cuda", "mps") and all(p.is_floating_point() for p in params)
        if fusable:
            try:
                return cls(params, lr=c.lr, weight_decay=c.weight_decay, fused=True)
            except (RuntimeError, ValueError):
                pass
        return cls(params, lr=c.lr, weight_decay=c.weight_decay)

    def _new_permutation(self) -> torch.Tensor:
        gen = self._data_gen
        return torch.randperm(self.x_train.shape[0], generator=gen, device=gen.device).to(self.device)

    # ----------------------------------------------------------------- commands
    def submit(self, name: str, value: Any = None) -> None:
        """Queue a change (thread-safe); it is applied before the next step."""
        if name != "reset" and name not in SETTABLE:
            raise ValueError(f"unknown setting {name!r}; settable: {', '.join(SETTABLE)} or 'reset'")
        self.commands.put(Command(name, value))

    def apply_commands(self) -> list[Command]:
        """Apply every queued command now; returns those applied. Bad values raise ValueError."""
        applied: list[Command] = []
        while not self.commands.empty():  # cheaper than an exception on every step
            cmd = self.commands.get_nowait()
            self._apply(cmd)
            applied.append(cmd)
        return applied

    def _apply(self, cmd: Command) -> None:
        if cmd.name == "reset":
            self.reset()
            return
        if cmd.name == "frozen":  # layer names whose weights stay fixed (transfer learning)
            from visualizer.engine.models import set_frozen

            set_frozen(self.model, list(cmd.value or []))
            return
        if cmd.name == "dropout":
            p = float(cmd.value)
            if not 0 <= p < 1:
                raise ValueError(f"dropout must be in [0, 1), got {cmd.value!r}")
            for m in self.model.modules():
                if isinstance(m, nn.Dropout):
                    m.p = p
            return
        new = replace(self.config, **{cmd.name: cmd.value}).validated()
        old, self.config = self.config, new
        if cmd.name == "optimizer" and new.optimizer != old.optimizer:
            self.optimizer = self._make_optimizer()
            return
        if new.lr != old.lr:
            self._lr_log.append((self.step_count + 1, new.lr))
        for group in self.optimizer.param_groups:
            group["lr"], group["weight_decay"] = new.lr, new.weight_decay
            if "momentum" in group:
                group["momentum"] = new.momentum

    # ----------------------------------------------------------------- training
    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.x_train.shape[0] // min(self.config.batch_size, self.x_train.shape[0]))

    @property
    def epoch(self) -> float:
        return self.samples_seen / self.x_train.shape[0]

    def steps_left_in_epoch(self) -> int:
        b, n = min(self.config.batch_size, self.x_train.shape[0]), self.x_train.shape[0]
        return max(1, (n - self._pos) // b)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.x_train.shape[0]
        b = min(self.config.batch_size, n)
        if self._pos + b > n:
            self._perm, self._pos = self._new_permutation(), 0
        idx = self._perm[self._pos : self._pos + b]
        self._pos += b
        self.samples_seen += b
        return self.x_train[idx], self.y_train[idx]

    def step(self, observer: StepObserver | None = None) -> torch.Tensor:
        """Train on one batch; returns the loss as a device tensor (no host sync)."""
        self.apply_commands()
        x, y = self._next_batch()
        if not self.model.training:  # train() walks every module: only when needed
            self.model.train()
        logits = self.model(x)
        if not isinstance(logits, torch.Tensor):  # a tuple or dict around the class scores (a person's own model)
            logits = first_tensor(logits)
        loss = token_loss(logits, y) if self.per_token else F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if observer is not None:
            observer.after_backward(self.model)
        self.optimizer.step()
        if observer is not None:
            observer.after_update(self.model)
        loss = loss.detach()
        self._record(loss, logits.detach(), y)  # a non-finite loss is found in these rows when they are read
        self.step_count += 1
        return loss

    def run(self, steps: int, stop: Any = None) -> int:
        """Run up to ``steps`` steps; ``stop`` (e.g. a threading.Event) ends early. Returns steps run."""
        done = 0
        while done < steps and not (stop is not None and stop.is_set()):
            self.step()
            done += 1
        return done

    _BLOCK_ELEMENTS = 1 << 20  # logits held before they are reduced (4 MB of float32)

    def _record(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Keep the step's loss, logits and labels (references, no device work: each step makes new ones)."""
        self._pending.append((loss, logits, y))
        self._pending_elements += logits.numel()
        if self._pending_elements >= self._BLOCK_ELEMENTS or len(self._pending) >= self._max_block_steps:
            self._close_block()

    def _close_block(self) -> None:
        """Turn the kept steps into (loss, accuracy) rows on the device (no host sync)."""
        pending, self._pending, self._pending_elements = self._pending, [], 0
        if not pending:
            return
        self.blocks_closed += 1
        losses = torch.stack([loss for loss, _, _ in pending]).float()
        try:  # one stack when every step had the same shapes (reading .shape per step costs more)
            hits = [_hit_rate([p[1] for p in pending], [p[2] for p in pending])]
        except RuntimeError:  # a batch size change inside the block: runs of equal shapes
            hits, start = [], 0
            while start < len(pending):
                end, shapes = start + 1, (pending[start][1].shape, pending[start][2].shape)
                while end < len(pending) and (pending[end][1].shape, pending[end][2].shape) == shapes:
                    end += 1
                hits.append(_hit_rate([p[1] for p in pending[start:end]], [p[2] for p in pending[start:end]]))
                start = end
        self._rows.append(torch.stack((losses, torch.cat(hits)), 1))
        if len(self._rows) > 64:  # nobody reads: keep one tensor, not thousands
            self._rows = [torch.cat(self._rows)]

    def take_scalar_rows(self) -> tuple[np.ndarray, list[Any], np.ndarray]:
        """Steps, (loss, accuracy) row blocks as device tensors, and lrs since the last take.

        Lets a capture fold the scalars into its one device-to-host copy.
        """
        with torch.no_grad():
            self._close_block()
        parts: list[Any] = self._rows
        n = sum(int(p.shape[0]) for p in parts)
        steps = np.arange(self._first_unread_step, self._first_unread_step + n, dtype=np.int64)
        starts = np.array([first for first, _ in self._lr_log], dtype=np.int64)
        values = np.array([lr for _, lr in self._lr_log], dtype=np.float64)
        lrs = values[np.searchsorted(starts, steps, side="right") - 1]
        self._lr_log = self._lr_log[-1:]  # the lr in force from here on
        self._rows = []
        self._first_unread_step += n
        return steps, parts, lrs

    def discard_unread_scalars(self, next_step: int) -> None:
        """Forget the per-step scalars not yet read; the next ones read start at ``next_step``."""
        self._rows, self._pending, self._pending_elements = [], [], 0
        self._first_unread_step = next_step
        self._lr_log = [(next_step, self.config.lr)]

    def drain_scalars(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Steps and per-step train loss/accuracy/lr since the last drain (copied to the host)."""
        steps, parts, lrs = self.take_scalar_rows()
        blocks = [p.cpu().numpy() if isinstance(p, torch.Tensor) else p for p in parts]
        rows = np.concatenate(blocks).astype(np.float64) if blocks else np.zeros((0, 2))
        return steps, {"train_loss": rows[:, 0], "train_acc": rows[:, 1], "lr": lrs}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None, batch: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy on (x, y), the validation split by default, as device tensors."""
        x = self.x_val if x is None else x
        y = self.y_val if y is None else y
        if self.device.type == "cpu" and x.shape[0]:
            batch = max(16, min(batch, CPU_EVAL_VALUES // max(1, x[0].numel())))
        was_training = self.model.training
        if was_training:  # already in eval mode inside a capture: no walk over every module
            self.model.eval()
        try:
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device)
            for i in range(0, x.shape[0], batch):
                logits = first_tensor(self.model(x[i : i + batch]))
                loss_sum += token_loss(logits, y[i : i + batch], reduction="sum")
                correct += (logits.argmax(-1) == y[i : i + batch]).sum()
            n = max(1, y.numel())  # per-token tasks: loss and accuracy per token
            return loss_sum / n, correct / n
        finally:
            if was_training:
                self.model.train()
