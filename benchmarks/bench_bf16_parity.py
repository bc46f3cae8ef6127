"""What bf16 autocast costs in quality, cheaply: two copies of the default model trained side by side on the
same batches (fp32, and bf16 autocast with the criterion in fp32), then both evaluated in fp32 on the default
validation set. A short run, not the default 2,500 steps: it says whether the training trajectories stay
together, not what the final AP of a bf16 default run is.

    python benchmarks/bench_bf16_parity.py [--quick] [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import torch
from bench_common import machine, write_result
from default_step import DefaultStep, Replica


def evaluate_fp32(step: DefaultStep, replica: Replica) -> dict[str, float]:
    from ablate.data import build_datasets, build_loader
    from ablate.engine.distributed import Dist
    from ablate.engine.evaluate import evaluate

    cfg = step.cfg
    train_ds, val_ds = build_datasets(cfg.data)
    loader = build_loader(val_ds, cfg.eval.batch_size, train=False, seed=cfg.train.seed, num_workers=0)
    valid = torch.zeros(replica.model.num_classes, dtype=torch.bool)
    valid[list(train_ds.category_ids)] = True
    stats, _ = evaluate(replica.model, loader, val_ds.coco, torch.device("cpu"), Dist(), focal=cfg.focal,
                        top_k=cfg.eval.top_k, backend=cfg.eval.backend, valid_classes=valid, progress=False)
    replica.model.train()
    return {k: float(stats[k]) for k in ("AP", "AP50")}


def run(steps: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    step = DefaultStep()
    fp32, bf16 = Replica(step), Replica(step)
    losses: dict[str, list[float]] = {"fp32": [], "bf16": []}
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(steps):
        batch = step.next_batch()
        pair = [("fp32", fp32, False), ("bf16", bf16, True)]
        for name, r, b in pair if i % 2 == 0 else pair[::-1]:
            t0 = time.perf_counter()
            losses[name].append(step.step(batch, r, bf16=b))
            times[name].append(time.perf_counter() - t0)
    evals = {"fp32": evaluate_fp32(step, fp32), "bf16": evaluate_fp32(step, bf16)}
    return {"settings": {"steps": steps, "threads": threads, "warmup_steps": step.cfg.train.warmup_steps,
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "load_avg_1m_at_end": os.getloadavg()[0]},
            "losses": losses, "times_s": times, "eval": evals}


def summarize(r: dict[str, Any]) -> str:
    s, loss, ev, t = r["settings"], r["losses"], r["eval"], r["times_s"]
    n = s["steps"]
    tail = max(1, n // 5)
    mean_tail = {k: statistics.fmean(v[-tail:]) for k, v in loss.items()}
    rel = [abs(a - b) / abs(a) for a, b in zip(loss["fp32"], loss["bf16"])]
    ratio = statistics.median(b / a for a, b in zip(t["fp32"], t["bf16"]))
    return "\n".join([
        f"## bf16 autocast vs fp32: a {n}-step training comparison (same batches, same initial weights)",
        "",
        f"{r['machine']['cpu']}, {s['threads']} torch thread(s), {s['date']}; the machine was loaded by other "
        f"agents' jobs (load average {s['load_avg_1m_at_end']:.0f} on 2 cores at the end), so read the ratio, "
        "not the times. The default recipe's first steps (warm-up "
        f"{s['warmup_steps']} steps), not a full run: AP here is far below a trained model's.",
        "",
        "| | fp32 | bf16 autocast |",
        "|---|---|---|",
        f"| training loss, mean of the last {tail} steps | {mean_tail['fp32']:.4f} | {mean_tail['bf16']:.4f} |",
        f"| AP / AP50 after {n} steps (evaluated in fp32) | {ev['fp32']['AP']:.3f} / {ev['fp32']['AP50']:.3f} "
        f"| {ev['bf16']['AP']:.3f} / {ev['bf16']['AP50']:.3f} |",
        f"| median step time | {statistics.median(t['fp32']) * 1e3:.0f} ms | {statistics.median(t['bf16']) * 1e3:.0f}"
        f" ms ({ratio:.2f}× per step pair) |",
        "",
        f"Step-1 loss: fp32 {loss['fp32'][0]:.4f}, bf16 {loss['bf16'][0]:.4f} (relative difference {rel[0]:.1e}); "
        f"median relative loss difference over all steps {statistics.median(rel):.1e} (the two copies drift "
        "apart as they train, so later differences include the divergence of two trajectories, not only rounding).",
    ])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 steps")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    res = run(10 if a.quick else a.steps, a.threads)
    text = summarize({**res, "machine": machine()})
    write_result("bf16_parity", res, text)
    print(text)
