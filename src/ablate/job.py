"""A job's parts, built from its config: data, loaders, model (with ``model.init_from``), criterion, optimiser,
schedule. The one reader of the whole config below the app; ``engine/`` only ever sees typed settings."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from ablate.config import ConfigError
from ablate.data import CocoDetection, build_datasets, build_loader, check_num_classes
from ablate.engine import weights
from ablate.engine.checkpoint import restore, save_checkpoint, snapshot
from ablate.engine.config import EvalConfig, TrainConfig
from ablate.engine.devices import device_problem
from ablate.engine.distributed import Dist
from ablate.engine.evaluate import Evaluation, evaluate, preserved_rng
from ablate.engine.optim import build_optimizer, build_scheduler, total_steps
from ablate.engine.train import Hooks, Trainer, TrainState, fit, note_step
from ablate.losses import build_criterion
from ablate.models.builder import build_model
from ablate.models.detector import Detector
from ablate.runs.console import eval_line
from ablate.runs.files import RunFiles
from ablate.runs.logger import Logger, NullLogger
from ablate.runs.media import EvalMedia

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``train.device`` on this machine (``auto``: CUDA where there is one); a device it lacks is a ConfigError."""
    if (problem := device_problem(name)) is not None:
        raise ConfigError(problem)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Job:
    files: RunFiles
    dist: Dist
    device: torch.device
    train_settings: TrainConfig
    eval_settings: EvalConfig
    effective: dict[str, Any]
    train_ds: CocoDetection
    val_ds: CocoDetection
    model: Detector
    val_loader: DataLoader
    valid_classes: torch.Tensor
    trainer: Trainer | None = None  # None for ``eval.only``
    loaded: dict[str, Any] | None = None  # what ``model.init_from`` loaded
    logger: Logger = NullLogger()
    media: EvalMedia | None = None  # W&B validation panel, per-class table and attention maps (rank 0)
    _started: float = 0.0
    _first_step: int = 0

    def restore(self, state: TrainState) -> None:
        """Resume from the job folder's checkpoint, if there is one (the only place a checkpoint is read)."""
        if self.trainer is not None and self.train_settings.resume:
            restore(self.files, self.effective, self._parts(), state)

    def checkpoint(self, state: TrainState) -> None:
        if self.dist.is_main and self.trainer is not None:
            categories = [{"id": i, "name": self.train_ds.category_names[i]} for i in self.train_ds.category_ids]
            # the data set's categories travel with the weights: ablate.from_run names classes without the data
            # elapsed_s: a resumed job's wall time counts its earlier attempts (up to this checkpoint)
            extra = {"categories": categories, "input_size": self.val_ds.input_size,
                     "elapsed_s": state.elapsed_s + time.perf_counter() - self._started}
            save_checkpoint(self.files, snapshot(self._parts(), state, self.effective) | extra)

    def evaluate(self, step: int) -> tuple[dict[str, Any], Evaluation]:
        """COCO stats, detections and per-class AP of the model now; the eval line goes to metrics.jsonl, W&B
        (with the validation panel) and the console."""
        t0 = time.perf_counter()
        ev = evaluate(self.model, self.val_loader, self.val_ds.coco, self.device, self.dist,
                      top_k=self.eval_settings.top_k, backend=self.eval_settings.backend,
                      valid_classes=self.valid_classes, precision=self.train_settings.precision,
                      progress=self.dist.is_main)
        record = {"kind": "eval", "step": step, **ev.stats, "time_s": time.perf_counter() - t0}
        if self.dist.is_main:
            total = self.trainer.total_steps if self.trainer is not None else step
            self.files.log_metrics(record)
            self.logger.log({f"val/{k}": v for k, v in ev.stats.items()}, step=step)
            if self.media is not None:
                with preserved_rng(self.device):  # the panel's images must not shift the training RNG either
                    self.media.on_eval(self.model, step, ev.per_class, final=step >= total)
            log.info(eval_line(step, total, ev.stats, elapsed_s=time.perf_counter() - self._started,
                               steps_done=step - self._first_step))
        return record, ev

    def log_train(self, record: dict) -> None:
        if self.dist.is_main:
            self.files.log_metrics(record)
            self.logger.log({f"train/{k}": record[k] for k in record if k.startswith(("loss", "class_error"))}
                            | {"train/lr": record["lr"]}, step=record["step"])

    def run(self, state: TrainState) -> tuple[dict[str, Any], Evaluation, float]:
        """Train (unless ``eval.only``) from ``state``, checkpoint, and evaluate: (eval record, evaluation,
        training seconds)."""
        self._started, self._first_step = time.perf_counter(), state.step
        if self.dist.is_main:
            self.media = EvalMedia(self.logger, self.val_ds, focal=self.model.focal, device=self.device)
        train_time = 0.0
        if self.trainer is not None:
            hooks = Hooks(log=self.log_train, checkpoint=lambda: self.checkpoint(state),
                          evaluate=lambda: state.history.append(self.evaluate(state.step)[0]))
            train_time = fit(self.trainer, state, self.eval_settings, hooks)
        try:
            self.checkpoint(state)
            record, final = self.evaluate(state.step)
        except BaseException as e:
            note_step(e, state.step)
            raise
        state.history.append(record)
        return record, final, train_time

    def _parts(self) -> dict[str, Any]:
        t = self.trainer
        assert t is not None
        return {"model": t.raw_model, "optimizer": t.optimizer, "scheduler": t.scheduler}


def build_job(cfg: DictConfig, files: RunFiles, d: Dist, device: torch.device, effective: dict[str, Any]) -> Job:
    """Every part of the job, in the order that fixes the seeded initialisation of the model."""
    train: TrainConfig = OmegaConf.to_object(cfg.train)  # type: ignore[assignment]
    evaluation: EvalConfig = OmegaConf.to_object(cfg.eval)  # type: ignore[assignment]
    if train.num_threads:
        torch.set_num_threads(train.num_threads)
    seed_everything(train.seed + d.rank)
    train_ds, val_ds = build_datasets(cfg.data, max_resolution=cfg.model.max_resolution)
    check_num_classes(cfg.model.num_classes, train_ds)
    try:
        model = build_model(cfg, num_classes=train_ds.num_classes)
    except (ValueError, RuntimeError) as e:  # sizes or weights the architecture cannot take
        raise ConfigError(f"cannot build the model for this config: {e}") from e
    loaded = (weights.load(model, cfg.model.init_from, wandb_mode=str(cfg.logger.mode))
              if cfg.model.init_from else None)
    if train.lr_backbone <= 0:  # the authors' switch: a frozen backbone
        model.backbone.requires_grad_(False)
    # channels-last convolutions are ~25% faster on CPU; training and evaluation-only runs use the same layout,
    # so re-evaluating a job's checkpoint gives bit-identical detections
    model = model.to(device, memory_format=torch.channels_last if train.channels_last else torch.contiguous_format)
    val_loader = build_loader(val_ds, evaluation.batch_size, train=False, seed=train.seed, rank=d.rank,
                              world_size=d.world_size, num_workers=cfg.data.num_workers,
                              pin_memory=device.type == "cuda")
    valid = torch.zeros(model.num_classes, dtype=torch.bool)
    valid[list(train_ds.category_ids)] = True
    job = Job(files, d, device, train, evaluation, effective, train_ds, val_ds, model, val_loader, valid,
              loaded=loaded)
    if not evaluation.only:
        job.trainer = build_trainer(cfg, train, model, train_ds, d, device)
        job.model = job.trainer.raw_model  # SyncBatchNorm may have replaced modules
    return job


def build_trainer(cfg: DictConfig, train: TrainConfig, model: Detector, train_ds: CocoDetection, d: Dist,
                  device: torch.device) -> Trainer:
    loader = build_loader(train_ds, train.batch_size, train=True, seed=train.seed, rank=d.rank,
                          world_size=d.world_size, num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")
    criterion = build_criterion(cfg.loss, num_classes=model.num_classes, focal=model.focal).to(device)
    wrapped: nn.Module = model
    if d.enabled:
        if device.type == "cuda":
            # BatchNorm (the tiny backbone's) over the global batch, so N GPUs × b train the model 1 × N·b
            # does; SyncBatchNorm has no CPU kernel, so gloo/CPU runs keep per-rank statistics.
            wrapped = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # find_unused_parameters=False: every variant uses all its parameters in each step
        wrapped = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False)
    optimizer = build_optimizer(model, train)
    scheduler = build_scheduler(optimizer, train, len(loader))
    return Trainer(wrapped, model, criterion, optimizer, scheduler, loader, device, d, train,
                   total_steps(train, len(loader)))
