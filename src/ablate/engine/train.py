"""The training loop: AdamW with a backbone group, warm-up + step LR drop, gradient clipping, auxiliary losses,
periodic evaluation and checkpoints, exact resume, and a stop on the first non-finite loss."""

from __future__ import annotations

import logging
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from ablate.data import build_datasets, build_loader
from ablate.engine.checkpoint import (
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    trim_metrics,
)
from ablate.engine.distributed import Dist, all_reduce_mean, all_reduce_sum
from ablate.engine.evaluate import Evaluation, evaluate
from ablate.losses import build_criterion
from ablate.runs.console import eval_line
from ablate.runs.files import RunFiles
from ablate.runs.media import EvalMedia

log = logging.getLogger(__name__)


class Diverged(RuntimeError):
    """A non-finite loss or gradient: the run stops before an optimizer step is taken on it."""

    def __init__(self, step: int, what: str):
        super().__init__(f"{what} diverged at step {step}")
        self.step = step


class Preempted(BaseException):
    """SIGTERM (e.g. SLURM preemption): a checkpoint was written; relaunching resumes from it.

    A ``BaseException``, as ``KeyboardInterrupt``: Hydra's launcher catches ``Exception`` and would go on to the
    next job of a multirun, while a stop signal means stop the process.
    """


@dataclass
class TrainState:
    step: int = 0
    resumed_from: int | None = None
    history: list[dict] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name} but CUDA is not available (use train.device=auto or cpu)")
    return device


def build_optimizer(model: nn.Module, cfg: DictConfig) -> torch.optim.Optimizer:
    """Two groups, as the authors: the backbone at ``lr_backbone``, everything else at ``lr``."""
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    groups = [{"params": rest, "lr": cfg.train.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.train.lr_backbone})
    # fused: one kernel per step instead of ~6 passes per tensor (3× faster on CPU, same update rule)
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, fused=fused or None)


def lr_factor(step: int, *, warmup: int, drop_step: int | None) -> float:
    """Linear warm-up over ``warmup`` steps, then ×0.1 from ``drop_step`` on (the paper's StepLR, in steps)."""
    factor = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    return factor * (0.1 if drop_step is not None and step >= drop_step else 1.0)


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


def train(cfg: DictConfig, model: nn.Module, files: RunFiles, logger: Any, d: Dist, device: torch.device,
          effective: dict, datasets: tuple | None = None, on_eval: Any = None) -> dict[str, Any]:
    """Train ``model`` per ``cfg`` and evaluate it; returns the summary that goes into result.json."""
    train_ds, val_ds = datasets if datasets is not None else build_datasets(cfg.data)
    bs = cfg.train.batch_size
    train_loader = build_loader(train_ds, bs, train=True, seed=cfg.train.seed, rank=d.rank,
                                world_size=d.world_size, num_workers=cfg.data.num_workers,
                                pin_memory=device.type == "cuda")
    val_loader = build_loader(val_ds, cfg.eval.batch_size, train=False, seed=cfg.train.seed, rank=d.rank,
                              world_size=d.world_size, num_workers=cfg.data.num_workers,
                              pin_memory=device.type == "cuda")
    raw_model = model
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    criterion = build_criterion(cfg.loss, num_classes=raw_model.num_classes, focal=cfg.focal).to(device)
    if d.enabled:
        if device.type == "cuda":
            # BatchNorm (the tiny backbone's) over the global batch, so N GPUs × b train the model 1 × N·b
            # does; SyncBatchNorm has no CPU kernel, so gloo/CPU runs keep per-rank statistics.
            model = raw_model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # find_unused_parameters=False: every variant uses all its parameters in each step (and True costs
        # an extra graph traversal per step)
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                    find_unused_parameters=False)
    optimizer = build_optimizer(raw_model, cfg)
    steps_per_epoch = len(train_loader)
    total = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
    drop = int(cfg.train.lr_drop * steps_per_epoch) if cfg.train.lr_drop is not None else None
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup=cfg.train.warmup_steps, drop_step=drop))
    valid = torch.zeros(raw_model.num_classes, dtype=torch.bool)
    valid[list(train_ds.category_ids)] = True
    amp = bool(cfg.train.amp) and device.type == "cuda"

    state = TrainState()
    window: dict[str, Any] = {"n": 0, "sums": {}}  # the log lines' averaging window, continued by a resume
    ckpt = load_checkpoint(files) if cfg.train.resume else None
    if ckpt is not None:
        check_compatible(ckpt["effective_config"], effective)
        raw_model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        state.step = state.resumed_from = int(ckpt["step"])
        state.history = list(ckpt.get("history", []))
        window = ckpt.get("log_window", window)
        log.info("resuming from step %d (%s)", state.step, files.checkpoint)
    del ckpt  # its tensors are in the model and optimizer now: don't hold a second copy for the whole run
    if d.is_main:  # a relaunch logs again what came after its checkpoint (everything, without one)
        trim_metrics(files, state.step, {int(r["step"]) for r in state.history if r.get("kind") == "eval"})

    def checkpoint() -> None:
        if d.is_main:
            save_checkpoint(files, {"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict(), "step": state.step, "rng": rng_state(),
                                    "effective_config": effective, "history": state.history,
                                    "log_window": {"n": n_sum, "sums": dict(sums)}})

    media = EvalMedia(logger, val_ds, focal=cfg.focal, device=device)

    def run_eval() -> Evaluation:
        t0 = time.perf_counter()
        ev = evaluate(raw_model, val_loader, val_ds.coco, device, d, focal=cfg.focal, top_k=cfg.eval.top_k,
                      backend=cfg.eval.backend, valid_classes=valid, amp=amp, progress=d.is_main)
        stats = ev.stats
        record = {"kind": "eval", "step": state.step, **stats, "time_s": time.perf_counter() - t0}
        state.history.append(record)
        if d.is_main:
            files.log_metrics(record)
            logger.log({f"val/{k}": v for k, v in stats.items()}, step=state.step)
            media.on_eval(raw_model, state.step, ev.per_class, final=state.step >= total)
            log.info(eval_line(state.step, total, stats, elapsed_s=time.perf_counter() - t_start,
                               steps_done=state.step - (state.resumed_from or 0)))
        if on_eval is not None:
            on_eval(record)
        model.train()
        return ev

    # SIGTERM (torchrun, scancel, preemption) and SIGUSR2 (submitit: `signal_delay_s` before the time limit):
    # finish the step, checkpoint, then hand over to the handler that was installed (submitit's requeues).
    stop: dict[str, Any] = {"signal": None}
    stop_signals = [signal.SIGTERM] + ([signal.SIGUSR2] if hasattr(signal, "SIGUSR2") else [])
    previous = {s: signal.getsignal(s) for s in stop_signals}
    for s in stop_signals:
        signal.signal(s, lambda signum, frame: stop.update(signal=signum))
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
    sums.update({k: v.to(device) for k, v in window["sums"].items()})
    n_sum, t_ckpt, t_start = window["n"], time.monotonic(), time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=state.step, desc="train", disable=not d.is_main, dynamic_ncols=True)
    try:
        while state.step < total:
            epoch, offset = divmod(state.step, steps_per_epoch)
            train_loader.sampler.set_epoch(epoch)
            train_loader.sampler.set_start(offset * bs)  # continue the exact data order after a resume
            for images, mask, targets in train_loader:
                images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                mask = mask.to(device, non_blocking=True)
                targets = to_device(targets, device)
                # one all-reduce carries the loss normaliser (mean boxes per rank, DETR's) and the stop flag,
                # acted on at the end of this step: all ranks must stop at the same step, or the others hang
                sync = all_reduce_sum(torch.tensor([float(sum(len(t["labels"]) for t in targets)),
                                                    float(stop["signal"] is not None)], device=device), d)
                num_boxes = max(float(sync[0]) / d.world_size, 1.0)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    outputs = model(images, mask)
                # non-finite predictions would crash the matcher before a loss exists: report them as one
                losses = (criterion(outputs, targets, num_boxes) if predictions_finite(outputs)
                          else {"loss": torch.tensor(float("nan"), device=device)})
                loss = losses["loss"]
                finite = torch.isfinite(loss)
                if not bool(all_reduce_sum(finite.float(), d) == d.world_size):  # stop every rank, not one
                    raise Diverged(state.step, "loss")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.train.clip_max_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.train.clip_max_norm)
                else:  # unclipped, a non-finite gradient would still poison the weights: look at it anyway
                    norm = torch.nn.utils.get_total_norm([p.grad for p in raw_model.parameters() if p.grad is not None])
                if not torch.isfinite(norm):
                    raise Diverged(state.step, "gradient")
                optimizer.step()
                scheduler.step()
                state.step += 1
                bar.update(1)
                for k in ("loss", "loss_ce", "loss_bbox", "loss_giou", "class_error"):
                    sums[k] += losses[k].detach()
                n_sum += 1

                if state.step % cfg.train.log_every == 0 or state.step == total:
                    keys = list(sums)
                    totals = all_reduce_mean(torch.stack([sums[k] for k in keys]), d)  # over all ranks' images
                    means = {k: float(v) / n_sum for k, v in zip(keys, totals)}
                    lr = optimizer.param_groups[0]["lr"]
                    record = {"kind": "train", "step": state.step, "epoch": state.step / steps_per_epoch,
                              "lr": lr, **means, "time_s": time.perf_counter() - t_start}
                    sums.clear()
                    n_sum = 0
                    if d.is_main:
                        files.log_metrics(record)
                        logger.log({f"train/{k}": v for k, v in means.items()} | {"train/lr": lr}, step=state.step)
                        bar.set_postfix(loss=f"{means['loss']:.3f}", lr=f"{lr:.1e}")
                if cfg.eval.every and state.step % cfg.eval.every == 0 and state.step < total:
                    run_eval()
                if time.monotonic() - t_ckpt >= cfg.train.checkpoint_every:
                    checkpoint()
                    t_ckpt = time.monotonic()
                # at the end of a step, before the next batch draws augmentation RNG: the resume is exact
                signalled = bool(sync[1] > 0) if d.enabled else stop["signal"] is not None
                if signalled:
                    checkpoint()
                    signum, stop["signal"] = stop["signal"], None
                    handler = previous.get(signum) if signum is not None else None
                    if signum is not None and not callable(handler):  # the default action was to die: stop
                        raise Preempted(f"stopped by signal {signum} at step {state.step}; checkpoint written")
                    if callable(handler):
                        # submitit's: on SIGUSR2 rank 0 requeues the job and exits; on SIGTERM it carries on
                        handler(signum, None)
                if state.step >= total:
                    break
    except BaseException as e:
        note_step(e, state.step)
        raise
    finally:
        bar.close()
        for s, h in previous.items():
            signal.signal(s, h)
    train_time = time.perf_counter() - t_start
    try:
        checkpoint()
        final = run_eval()
    except BaseException as e:
        note_step(e, state.step)
        raise
    return {"metrics": final.stats, "detections": final.detections, "per_class": final.per_class,
            "steps": state.step, "train_time_s": train_time, "resumed_from": state.resumed_from,
            "steps_per_epoch": steps_per_epoch}
