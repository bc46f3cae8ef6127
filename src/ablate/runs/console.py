"""What a run prints: the start banner, one line per evaluation. (The final summary is ``__main__``'s.)

Lines go through ``logging``, so Hydra's job log (``<output>/ablate.log``) holds the same text as the console.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ablate.engine.optim import epoch_steps, total_steps
from ablate.help import describe


def variant_words(cfg: Any, axes: dict[str, Any]) -> str:
    """The variant in the paper's words, from the config files' own descriptions, e.g.
    ``Conditional DETR: CSQ (the paper's): p_q = T(f)·p_s; T = diag(λ_q) …; focal loss; box offsets from s``."""
    from ablate.config import config_dir

    conf = config_dir()
    conditional = axes["csq"] not in ("detr", "detr_content")
    parts = [describe(conf / "csq", axes["csq"], limit=200)]
    for axis in ("proj", "ref"):
        if axes[axis] != "n/a":
            parts.append(f"{axis} {axes[axis]}: {describe(conf / axis, axes[axis], limit=200)}")
    parts.append("sigmoid focal loss" if axes["focal"] else "softmax CE + no-object class")
    parts.append("boxes as offsets from s" if axes["offset"] else "boxes predicted directly")
    return f"{'Conditional DETR' if conditional else 'DETR'} ({axes['csq']}): " + "; ".join(parts)


def banner(cfg: Any, result: dict[str, Any], *, device: Any, threads: int, datasets: tuple[Any, Any]) -> str:
    """The start banner: what is trained, on what, for how long, and where everything goes."""
    train_ds, val_ds = datasets
    world, bs = int(result.get("world_size") or 1), int(cfg.train.batch_size)
    steps_per_epoch = max(math.ceil(len(train_ds) / world) // bs, 1)
    total = total_steps(cfg.train, steps_per_epoch)
    schedule = epoch_steps(cfg.train, steps_per_epoch)
    if schedule > steps_per_epoch and not cfg.train.max_steps:  # a small data set's epochs, counted longer
        epochs = (f"{cfg.train.epochs} epochs of {schedule:,} steps: the data's {steps_per_epoch:,}-step epochs "
                  "counted as train.min_epoch_steps")
    else:
        epochs = f"{total / steps_per_epoch:.1f} epochs of {steps_per_epoch:,} steps"
    evals = f"evaluated every {cfg.eval.every:,} steps and at the end" if cfg.eval.every else "evaluated at the end"
    params = result.get("params") or {}
    classes = len(getattr(train_ds, "category_ids", []) or []) or "?"
    lines = [
        f"ablate: {variant_words(cfg, result['axes'])}",
        f"  model   {cfg.model.name}: {cfg.model.num_queries} queries, {params.get('total', 0):,} parameters "
        f"({params.get('trainable', 0):,} trainable), seed {cfg.train.seed}",
        f"  device  {device}{f' × {world} processes' if world > 1 else ''}, {threads} CPU "
        f"thread{'s' if threads != 1 else ''}",
        f"  data    {cfg.data.name}: {len(train_ds):,} training / {len(val_ds):,} validation images, {classes} classes",
        f"  budget  {total:,} steps × {bs * world} images ({epochs}), {evals}",
        f"  output  {result['output_dir']}",
        f"  W&B     {wandb_where(result.get('wandb'))}",
    ]
    return "\n".join(lines)


def wandb_where(info: dict[str, Any] | None) -> str:
    """Where the run's W&B record will be."""
    if not info or info.get("mode") == "disabled" or not info.get("dir"):
        return "off (logger=none or logger.mode=disabled)"
    if info.get("mode") == "online":
        return f"online: {info.get('url') or info['id']}"
    return (f"offline run {info['id']} in {info['dir']} "
            f"(upload later: wandb sync {Path(info['dir']) / 'offline-run-*'})")


def eval_line(step: int, total: int, stats: dict[str, float], *, elapsed_s: float, steps_done: int) -> str:
    """``eval step 500/2,500  AP 0.123  AP50 0.345  elapsed 2m10s  ETA 8m40s``: the ETA extrapolates the
    time per step of this process (so a resumed run does not count the steps it skipped)."""
    remaining = max(total - step, 0)
    eta = elapsed_s / steps_done * remaining if steps_done > 0 else math.nan
    return (f"eval step {step:,}/{total:,}  AP {stats.get('AP', math.nan):.3f}  AP50 {stats.get('AP50', math.nan):.3f}"
            f"  elapsed {duration(elapsed_s)}  ETA {duration(eta) if remaining else 'done'}")


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h07m``; ``?`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
