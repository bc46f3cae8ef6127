"""GPU section (skipped without CUDA): our R50 train step at the paper's sizes with AMP bf16 and torch.compile
on/off, and the epoch time that implies on COCO train2017 (118,287 images) at batch 2 per GPU."""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from bench_common import stats, write_result

COCO_TRAIN_IMAGES = 118_287


def step_fn(compile_model: bool, amp: bool, size: tuple[int, int]) -> Any:
    import ablate
    from ablate.engine.optim import build_optimizer
    from ablate.engine.precision import to_fp32
    from ablate.losses import build_criterion

    cfg = ablate.compose(["model=r50", "model.num_classes=91"])
    torch.manual_seed(0)
    model = ablate.build_model(cfg).cuda().train()
    criterion = build_criterion(cfg.loss, num_classes=91, focal=cfg.focal).cuda()
    optimizer = build_optimizer(model, cfg.train)
    forward = torch.compile(model) if compile_model else model
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, *size, generator=g).cuda()
    mask = torch.zeros(2, *size, dtype=torch.bool, device="cuda")
    targets = [{"labels": torch.randint(1, 91, (7,), generator=g).cuda(),
                "boxes": (torch.rand(7, 4, generator=g) * 0.5 + 0.2).cuda()} for _ in range(2)]

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            outputs = forward(images, mask)
        loss = criterion(to_fp32(outputs), targets, 14.0)["loss"]  # losses in fp32, as the trainer does
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_max_norm)
        optimizer.step()

    return step


def run(quick: bool) -> dict[str, Any]:
    if not torch.cuda.is_available():
        md = ("## GPU\n\nSkipped: no CUDA device on this machine. `python benchmarks/run.py` runs this section "
              "(AMP bf16 and torch.compile on/off, R50 at 800×1066, batch 2) where CUDA is available.")
        out: dict[str, Any] = {"skipped": "no CUDA device"}
        write_result("gpu", out, md)
        return out
    size = (800, 1066)
    steps = 5 if quick else 30
    rows = []
    for compile_model in (False, True):
        for amp in (False, True):
            step = step_fn(compile_model, amp, size)
            for _ in range(3):  # warm-up (and compilation)
                step()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            s = stats(times)
            rows.append({"compile": compile_model, "amp_bf16": amp, **s,
                         "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30,
                         "epoch_h_batch2": s["median_s"] * COCO_TRAIN_IMAGES / 2 / 3600})
    md = [f"## GPU: our R50 train step, 2×3×{size[0]}×{size[1]} ({torch.cuda.get_device_name(0)})", "",
          "| torch.compile | AMP bf16 | step (median) | peak memory | one COCO epoch, 1 GPU × batch 2 |",
          "|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {'on' if r['compile'] else 'off'} | {'on' if r['amp_bf16'] else 'off'} | "
                  f"{r['median_s'] * 1e3:.0f} ms | {r['peak_mem_gb']:.1f} GB | {r['epoch_h_batch2']:.1f} h |")
    out = {"device": torch.cuda.get_device_name(0), "size": size, "rows": rows}
    write_result("gpu", out, "\n".join(md))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    run(p.parse_args().quick)
