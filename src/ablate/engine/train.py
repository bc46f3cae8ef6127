"""The training loop: one step (forward, loss, backward, clip, AdamW), and ``fit``, which repeats it with the
periodic log line, evaluation, checkpoint and the stop signals. Everything it runs is built in ``ablate.job``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ablate.engine.averages import LossWindow
from ablate.engine.config import EvalConfig, TrainConfig
from ablate.engine.distributed import Dist, all_reduce_sum
from ablate.engine.precision import autocast, to_fp32
from ablate.engine.signals import Preempted, StopSignals

__all__ = ["Diverged", "Preempted", "TrainState", "Trainer", "fit", "train_step"]


class Diverged(RuntimeError):
    """A non-finite loss or gradient: the run stops before an optimizer step is taken on it."""

    def __init__(self, step: int, what: str):
        super().__init__(f"{what} diverged at step {step}")
        self.step = step


@dataclass
class TrainState:
    """What a checkpoint restores besides the weights: the step, the evaluation history, the log window, and
    the time spent so far."""

    step: int = 0
    resumed_from: int | None = None
    history: list[dict] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=lambda: {"n": 0, "sums": {}})
    elapsed_s: float = 0.0  # wall seconds earlier attempts spent up to the restored checkpoint


@dataclass
class Trainer:
    """The parts one optimizer step needs (``model`` may be DDP-wrapped; ``raw_model`` never is)."""

    model: nn.Module
    raw_model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: DataLoader
    device: torch.device
    dist: Dist
    settings: TrainConfig
    total_steps: int


@dataclass
class Hooks:
    """What ``fit`` calls out to: the log line, an evaluation, a checkpoint."""

    log: Callable[[dict], None]
    evaluate: Callable[[], None]
    checkpoint: Callable[[], None]


def note_step(e: BaseException, step: int) -> None:
    """Tell the caller at which step ``e`` happened (result.json's ``error.step``)."""
    try:
        e.train_step = step  # type: ignore[attr-defined]
    except AttributeError:  # an exception type with __slots__: the step stays unknown
        pass


def predictions_finite(outputs: dict[str, Any]) -> bool:
    """All classes and boxes of every decoder layer are finite."""
    tensors = [outputs.get("all_logits", outputs["pred_logits"]), outputs.get("all_boxes", outputs["pred_boxes"])]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def to_device(targets: list[dict], device: torch.device) -> list[dict]:
    return [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]


def train_step(t: Trainer, batch: tuple, step: int, stop_flag: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """One optimizer step on ``batch``; returns the losses and whether any rank was asked to stop."""
    images, mask, targets = batch
    memory_format = torch.channels_last if t.settings.channels_last else torch.contiguous_format
    images = images.to(t.device, non_blocking=True).contiguous(memory_format=memory_format)
    mask = mask.to(t.device, non_blocking=True)
    targets = to_device(targets, t.device)
    d = t.dist
    # one all-reduce carries the loss normaliser (mean boxes per rank, DETR's) and the stop flag, acted on at
    # the end of this step: all ranks must stop at the same step, or the others hang
    sync = all_reduce_sum(torch.tensor([float(sum(len(x["labels"]) for x in targets)), float(stop_flag)],
                                       device=t.device), d)
    num_boxes = max(float(sync[0]) / d.world_size, 1.0)
    with autocast(t.device, t.settings.precision):
        outputs = t.model(images, mask)
    outputs = to_fp32(outputs)
    # non-finite predictions would crash the matcher before a loss exists: report them as one
    losses = (t.criterion(outputs, targets, num_boxes) if predictions_finite(outputs)
              else {"loss": torch.tensor(float("nan"), device=t.device)})
    if not bool(all_reduce_sum(torch.isfinite(losses["loss"]).float(), d) == d.world_size):  # stop every rank
        raise Diverged(step, "loss")
    t.optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    params = t.raw_model.parameters()
    if t.settings.clip_max_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, t.settings.clip_max_norm)
    else:  # unclipped, a non-finite gradient would still poison the weights: look at it anyway
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if not torch.isfinite(norm):
        raise Diverged(step, "gradient")
    t.optimizer.step()
    t.scheduler.step()
    return losses, bool(sync[1] > 0)


def fit(t: Trainer, state: TrainState, evaluation: EvalConfig, hooks: Hooks) -> float:
    """Train from ``state.step`` to ``t.total_steps``; returns the training time in seconds."""
    window = LossWindow(t.device, state.window)
    steps_per_epoch, bs = len(t.loader), t.loader.batch_size
    t_ckpt, t_start = time.monotonic(), time.perf_counter()
    t.model.train()
    bar = tqdm(total=t.total_steps, initial=state.step, desc="train", disable=not t.dist.is_main,
               dynamic_ncols=True)
    try:
        with StopSignals() as stop, bar:
            while state.step < t.total_steps:
                epoch, offset = divmod(state.step, steps_per_epoch)
                t.loader.sampler.set_epoch(epoch)
                t.loader.sampler.set_start(offset * bs)  # continue the exact data order after a resume
                for batch in t.loader:
                    losses, stop_asked = train_step(t, batch, state.step, stop.pending is not None)
                    state.step += 1
                    bar.update(1)
                    window.add(losses)
                    if state.step % t.settings.log_every == 0 or state.step == t.total_steps:
                        means = window.flush(t.dist)
                        lr = t.optimizer.param_groups[0]["lr"]
                        hooks.log({"kind": "train", "step": state.step, "epoch": state.step / steps_per_epoch,
                                   "lr": lr, **means, "time_s": time.perf_counter() - t_start})
                        bar.set_postfix(loss=f"{means['loss']:.3f}", lr=f"{lr:.1e}")
                    if evaluation.every and state.step % evaluation.every == 0 and state.step < t.total_steps:
                        hooks.evaluate()
                        t.model.train()
                    if time.monotonic() - t_ckpt >= t.settings.checkpoint_every:
                        state.window = window.state_dict()  # only a checkpoint reads it
                        hooks.checkpoint()
                        t_ckpt = time.monotonic()
                    # at the end of a step, before the next batch draws augmentation RNG: the resume is exact
                    if stop_asked if t.dist.enabled else stop.pending is not None:
                        state.window = window.state_dict()
                        hooks.checkpoint()
                        stop.hand_over(state.step)
                    if state.step >= t.total_steps:
                        break
    except BaseException as e:
        note_step(e, state.step)
        raise
    finally:
        state.window = window.state_dict()
    return time.perf_counter() - t_start
