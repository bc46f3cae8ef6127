"""Structured-config schema of training and evaluation (``train`` and ``eval`` nodes)."""

from __future__ import annotations

from dataclasses import dataclass

from ablate.engine.coco_eval import EvalBackend
from ablate.engine.precision import Precision


@dataclass
class TrainConfig:
    epochs: int = 50
    max_steps: int | None = None  # when set, training stops after this many optimizer steps
    min_epoch_steps: int = 0  # schedule epochs (train.epochs, train.lr_drop) of at least this many steps
    batch_size: int = 2  # per process; the effective batch is batch_size × world size
    lr: float = 1e-4
    lr_backbone: float = 1e-5  # ≤ 0 freezes the whole backbone
    weight_decay: float = 1e-4
    lr_drop: float | None = 40  # epoch at which the lr drops ×0.1 (None: never)
    warmup_steps: int = 0  # linear warm-up from 0 (not in the paper; used by the tiny CPU recipe)
    clip_max_norm: float = 0.1  # ≤ 0: no clipping
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Precision = Precision.fp32  # fp32 (the authors') | bf16: autocast of the forward, CPU or CUDA
    channels_last: bool = True  # NHWC convolutions (~25% faster backbone on CPU); no effect on results
    num_threads: int | None = None  # torch CPU threads (None: torch's default)
    log_every: int = 20  # steps between training log lines
    checkpoint_every: float = 120.0  # seconds of training between checkpoints
    resume: bool = True  # continue from <output_dir>/checkpoint.pt when it exists


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations (0: only at the end)
    backend: EvalBackend = EvalBackend.pycocotools
    batch_size: int = 8
    top_k: int = 100  # detections kept per image (COCO's maxDets)
    only: bool = False  # evaluate model.init_from without training (no optimizer step, no training checkpoint)
