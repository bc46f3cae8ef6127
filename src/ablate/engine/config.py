"""Structured-config schema of training and evaluation (``train`` and ``eval`` nodes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    epochs: int = 50
    max_steps: int | None = None  # when set, training stops after this many optimizer steps
    batch_size: int = 2  # per process; the effective batch is batch_size × world size
    lr: float = 1e-4
    lr_backbone: float = 1e-5  # ≤ 0 freezes the whole backbone
    weight_decay: float = 1e-4
    lr_drop: float | None = 40  # epoch at which the lr drops ×0.1 (None: never)
    warmup_steps: int = 0  # linear warm-up from 0 (not in the paper; used by the tiny CPU recipe)
    clip_max_norm: float = 0.1  # ≤ 0: no clipping
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    channels_last: bool = True  # NHWC convolutions (~25% faster backbone on CPU); no effect on results
    num_threads: int | None = None  # torch CPU threads (None: torch's default)
    log_every: int = 20  # steps between training log lines
    checkpoint_every: float = 120.0  # seconds of training between checkpoints
    resume: bool = True  # continue from <output_dir>/checkpoint.pt when it exists


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations (0: only at the end)
    backend: str = "pycocotools"  # pycocotools | faster_coco_eval
    batch_size: int = 8
    top_k: int = 100  # detections kept per image (COCO's maxDets)
    only: bool = False  # evaluate model.init_from (or the run's checkpoint) without training
