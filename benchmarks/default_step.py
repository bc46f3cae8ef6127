"""The default ``python -m ablate`` train step outside the trainer, for the step benchmarks (bench_flops.py,
bench_levers.py): the same config, data, model, criterion, optimizer and loop body as ``engine/train.py``
(single process, CPU), with switches for the levers the trainer does not have yet (bf16 autocast, compile).

bf16 follows the recipe the lead asked for: the model runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``,
its outputs are cast back with ``.float()`` and the criterion (matching and losses) runs in fp32 outside autocast.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from ablate.engine.precision import to_fp32

os.environ.setdefault("TQDM_DISABLE", "1")  # the cache's progress bars would bury the results

Batch = tuple[Tensor, Tensor, list[dict[str, Tensor]], float]


class Replica:
    """One trainee: a copy of the model in a memory format, its optimizer and schedule, and the callables a step
    runs (the model and criterion, or compiled versions of them)."""

    def __init__(self, step: DefaultStep, memory_format: torch.memory_format = torch.channels_last):
        from ablate.engine.optim import build_optimizer, lr_factor

        cfg = step.cfg
        self.model = copy.deepcopy(step.model).to(memory_format=memory_format)
        self.memory_format = memory_format
        self.optimizer = build_optimizer(self.model, cfg.train)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, warmup=cfg.train.warmup_steps, drop_step=None))
        self.forward: Callable = self.model
        self.criterion: Callable = step.criterion


class DefaultStep:
    """Config, data, model and criterion of the default run (``overrides`` on top of the defaults)."""

    def __init__(self, overrides: tuple[str, ...] = ()):
        import ablate
        from ablate.data import build_datasets, build_loader
        from ablate.losses import build_criterion

        self.cfg = cfg = ablate.compose(["logger=none", *overrides])
        train_ds, _ = build_datasets(cfg.data)
        self.loader = build_loader(train_ds, cfg.train.batch_size, train=True, seed=cfg.train.seed, num_workers=0)
        torch.manual_seed(cfg.train.seed)
        self.model = ablate.build_model(cfg, num_classes=train_ds.num_classes)  # as app.py
        self.criterion = build_criterion(cfg.loss, num_classes=self.model.num_classes, focal=cfg.focal)
        self.clip = cfg.train.clip_max_norm
        self.default = Replica(self, torch.channels_last if cfg.train.channels_last else torch.contiguous_format)
        self.model = self.default.model
        self._epoch, self._it = 0, iter(())

    def next_batch(self) -> Batch:
        """The loader's next batch (a new epoch when one runs out), as the trainer receives it."""
        try:
            images, mask, targets = next(self._it)
        except StopIteration:
            self.loader.sampler.set_epoch(self._epoch)
            self._epoch += 1
            self._it = iter(self.loader)
            images, mask, targets = next(self._it)
        return images, mask, targets, float(max(sum(len(t["labels"]) for t in targets), 1))

    def step(self, batch: Batch, replica: Replica | None = None, *, bf16: bool = False,
             mark: Callable[[str], None] | None = None) -> float:
        """One optimizer step: the body of engine.train's loop; returns the loss. ``mark(phase)`` is called at
        the end of the model forward ("forward"), the criterion ("criterion"), backward and the update."""
        from ablate.engine.train import predictions_finite

        mark = mark or (lambda _: None)
        r = replica or self.default
        images, mask, targets, num_boxes = batch
        images = images.contiguous(memory_format=r.memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            outputs = r.forward(images, mask)
        if bf16:
            outputs = to_fp32(outputs)  # the criterion runs outside autocast
        mark("forward")
        assert predictions_finite(outputs)
        losses = r.criterion(outputs, targets, num_boxes)
        loss = float(losses["loss"].detach())
        assert math.isfinite(loss)
        mark("criterion")
        r.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        mark("backward")
        norm = torch.nn.utils.clip_grad_norm_(r.model.parameters(), self.clip)
        assert bool(torch.isfinite(norm))
        r.optimizer.step()
        r.scheduler.step()
        mark("optimizer")
        return loss


class PhaseClock:
    """Wall-clock boundaries inside one step from forward hooks on the detector's parts and a wrapper around
    the matcher (synchronous CPU kernels: a timestamp at a hook is where the previous part's work ended)."""

    def __init__(self, step: DefaultStep):
        self.t: dict[str, float] = {}
        m = step.model
        self._hooks = [
            m.register_forward_pre_hook(lambda *_: self._at("start")),
            m.backbone.register_forward_hook(lambda *_: self._at("backbone")),
            m.transformer.encoder.register_forward_hook(lambda *_: self._at("encoder")),
        ]
        matcher = step.criterion.matcher
        clock = self

        class TimedMatcher:
            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                clock._at("match_start")
                out = matcher(*args, **kwargs)
                clock._at("match_end")
                return out

            def __getattr__(self, name: str) -> Any:
                return getattr(matcher, name)

        self._matcher, self._step = matcher, step
        step.criterion.matcher = TimedMatcher()

    def _at(self, name: str) -> None:
        self.t[name] = time.perf_counter()

    def mark(self, name: str) -> None:
        self._at(name)

    def phases(self, t_data: float) -> dict[str, float]:
        """Seconds per phase of the step just run; ``t_data`` the seconds its batch took to load."""
        t = self.t
        return {
            "data": t_data,
            "backbone": t["backbone"] - t["start"],
            "encoder": t["encoder"] - t["backbone"],  # + input projection and key positions
            "decoder": t["forward"] - t["encoder"],  # + reference points and heads
            "matching": t["match_end"] - t["match_start"],
            "loss": (t["criterion"] - t["forward"]) - (t["match_end"] - t["match_start"]),
            "backward": t["backward"] - t["criterion"],
            "optimizer": t["optimizer"] - t["backward"],
        }

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._step.criterion.matcher = self._matcher


def timed_batches(step: DefaultStep, n: int) -> Iterator[tuple[Batch, float]]:
    for _ in range(n):
        t0 = time.perf_counter()
        b = step.next_batch()
        yield b, time.perf_counter() - t0
