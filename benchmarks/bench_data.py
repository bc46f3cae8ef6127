"""Data pipeline vs the training step at the default config (``model=tiny``, shapes data, batch 32).

The loader runs in the training process (``data.num_workers=0`` by default), so its time adds to every step:
what matters is how its images/s compare with the rate at which the train step consumes images.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from bench_common import main as cli
from bench_common import stats, write_result

import ablate
from ablate.data import build_datasets, build_loader
from ablate.engine.optim import build_optimizer
from ablate.engine.train import predictions_finite
from ablate.losses import build_criterion


def run(quick: bool) -> dict[str, Any]:
    cfg = ablate.compose([])
    train_ds, _ = build_datasets(cfg.data)  # generates the shapes set on first use (cached afterwards)
    bs = cfg.train.batch_size
    loader = build_loader(train_ds, bs, train=True, seed=cfg.train.seed, num_workers=cfg.data.num_workers)
    n_batches = 10 if quick else 40
    it = iter(loader)
    next(it)  # first batch: image cache warm-up excluded
    load_times, batches = [], []
    for _ in range(n_batches):
        t0 = time.perf_counter()
        batches.append(next(it))
        load_times.append(time.perf_counter() - t0)

    torch.manual_seed(0)
    model = ablate.build_model(cfg, num_classes=max(train_ds.category_ids) + 1)  # what the data needs
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    criterion = build_criterion(cfg.loss, num_classes=model.num_classes, focal=cfg.focal)
    optimizer = build_optimizer(model, cfg.train)
    step_times = []
    for i, (images, mask, targets) in enumerate(batches[: 4 if quick else 12]):
        t0 = time.perf_counter()
        outputs = model(images.contiguous(memory_format=fmt), mask)
        assert predictions_finite(outputs)
        loss = criterion(outputs, targets, float(sum(len(t["labels"]) for t in targets)))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_max_norm)
        optimizer.step()
        if i > 0:  # the first step allocates
            step_times.append(time.perf_counter() - t0)
    load, step = stats(load_times), stats(step_times)
    load_ips, step_ips = bs / load["median_s"], bs / step["median_s"]
    out = {"batch_size": bs, "num_workers": cfg.data.num_workers, "threads": torch.get_num_threads(),
           "load": load, "step": step, "loader_images_per_s": load_ips, "step_images_per_s": step_ips,
           "loader_share_of_step": load["median_s"] / (load["median_s"] + step["median_s"])}
    md = "\n".join([
        "## Data pipeline vs train step (default tiny config, shapes data, cached in RAM)",
        "",
        "| | images/s | ms per batch of 32 |",
        "|---|---|---|",
        f"| loader (`build_loader`, {cfg.data.num_workers} workers, random-resize + flip augmentation) "
        f"| {load_ips:.0f} | {load['median_s'] * 1e3:.0f} |",
        f"| train step (fwd + criterion + bwd + AdamW) | {step_ips:.0f} | {step['median_s'] * 1e3:.0f} |",
        "",
        f"The loader produces images {load_ips / step_ips:.1f}× faster than the step consumes them; loading is "
        f"{out['loader_share_of_step']:.0%} of the wall time per step (it runs in the training process).",
    ])
    write_result("data_pipeline", out, md)
    return out


if __name__ == "__main__":
    cli(run, __doc__)
