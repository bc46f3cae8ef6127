"""GPU section: the R50 train step and inference, ours vs the authors' Conditional DETR, fp32 / bf16 autocast /
torch.compile, as step time, images/s and peak memory; and the wall time of the default tiny run on the GPU.

    python benchmarks/bench_gpu.py [--quick] [--tiny-run [fp32] [bf16]] [--reference ../shared/reference/ConditionalDETR]

On a lent GPU machine: benchmarks/gpu_prepare.sh here, then benchmarks/gpu_session.sh there (one device call).

Skipped (and said so in results/gpu.md) where CUDA is missing. Each (side, mode) runs in its own
``step_worker.py`` process on the same weights and inputs (the authors' side writes its state dict, ours loads
it; the fp32 eval losses must agree). The authors' code has no AMP or compile recipe: it runs fp32 (their
recipe) and bf16 autocast wrapped the same way as ours; compile is ours only ("compile is a legitimate advantage
if it is our default on that path"), so every ours row is compared with their fp32 row.

``--device cpu --smoke --out DIR`` runs every branch (autocast, compile with ``--compile-backend aot_eager``,
the tiny run) at a tiny size on CPU: tests/benchmarks/test_bench_gpu.py, so the prepared GPU script has run
before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_common import DEFAULT_REFERENCE, ROOT, Worker, machine, stats, write_result
from bench_train import make_inputs

COCO_TRAIN_IMAGES = 118_287
# (label, bf16 autocast, compiled) per side; the authors' code runs without compile
MODES = {"ours": [("fp32", False, False), ("bf16", True, False), ("compile", False, True),
                  ("compile + bf16", True, True)],
         "authors": [("fp32", False, False), ("bf16", True, False)]}
TINY_SMOKE = ["train.max_steps=3", "train.batch_size=4", "train.warmup_steps=0", "eval.batch_size=8",
              "data.shapes.num_train=24", "data.shapes.num_val=6", "model.backbone.widths=[8,16]",
              "model.hidden_dim=32", "model.dim_feedforward=64", "model.enc_layers=1", "model.dec_layers=2",
              "model.num_queries=6", "model.detr_num_queries=4"]


def measure(side: str, label: str, amp: bool, compiled: bool, *, config: str, inputs: Path, state: Path,
            reference: Path, device: str, backend: str, warmup: int, steps: int) -> dict[str, Any]:
    """One (side, mode) in a fresh worker: setup, warm-up (compilation included), timed train and infer steps."""
    args = ["--impl", side, "--config", config, "--inputs", str(inputs), "--state", str(state), "--device", device,
            "--threads", "1" if device == "cpu" else "0"]  # a CPU smoke run shares the cores with others
    args += ["--reference", str(reference)] if side == "authors" else []
    args += ["--amp"] if amp else []
    args += ["--compile", backend] if compiled else []
    w = Worker(args)
    try:
        t0 = time.perf_counter()
        setup = w.call(cmd="setup")
        w.call(cmd="train", n=warmup)
        warm_s = time.perf_counter() - t0
        train = stats(w.call(cmd="train", n=steps)["times"])
        w.call(cmd="infer", n=warmup)
        infer = stats(w.call(cmd="infer", n=steps)["times"])
        peak = w.call(cmd="peak_mem")["peak_mem_mb"]
    finally:
        w.close()
    batch = torch.load(inputs, weights_only=True)["images"].shape[0]
    return {"side": side, "mode": label, "amp_bf16": amp, "compile": compiled, "eval_loss": setup["eval_loss"],
            "setup_and_warmup_s": warm_s, "train": train, "infer": infer, "peak_mem_mb": peak,
            "train_images_per_s": batch / train["median_s"], "infer_images_per_s": batch / infer["median_s"],
            "coco_epoch_h": train["median_s"] * COCO_TRAIN_IMAGES / batch / 3600}


def tiny_run(device: str, smoke: bool, out: Path, precisions: list[str]) -> list[dict[str, Any]]:
    """The default `python -m ablate` on this device in each precision, timed end to end as a user runs it."""
    rows = []
    for precision in precisions:
        run_dir = out / f"tiny_{precision}"
        cmd = [sys.executable, "-m", "ablate", f"train.device={device}", f"train.precision={precision}",
               "logger=none", f"hydra.run.dir={run_dir}", *(TINY_SMOKE if smoke else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"})
        wall = time.perf_counter() - t0
        result = json.loads((run_dir / "result.json").read_text()) if (run_dir / "result.json").is_file() else {}
        rows.append({"precision": precision, "command": " ".join(cmd[1:]), "returncode": proc.returncode,
                     "wall_s": wall, "status": result.get("status"), "metrics": result.get("metrics") or {},
                     "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""})
    return rows


def summarize(r: dict[str, Any]) -> str:
    size = "×".join(map(str, r["input"]))
    md = [f"## GPU: R50 train step and inference, ours vs the authors' ({r['device_name']})", "",
          f"Input {size}, {r['steps']} timed steps after {r['warmup']} warm-up steps per row, each row in a fresh "
          "process on the same weights and inputs; compile backend `" + r["backend"] + "`.", "",
          "| side | mode | train step (median) | train images/s | inference images/s | peak memory | "
          "ours / authors' fp32 (train, inference time) | setup + warm-up | one COCO epoch, 1 GPU |",
          "|---|---|---|---|---|---|---|---|---|"]
    theirs = next((x for x in r["rows"] if x["side"] == "authors" and x["mode"] == "fp32"), None)
    for x in r["rows"]:
        ratio = "—"
        if theirs and x["side"] == "ours":
            ratio = (f"{x['train']['median_s'] / theirs['train']['median_s']:.2f}× / "
                     f"{x['infer']['median_s'] / theirs['infer']['median_s']:.2f}×")
        mem = f"{x['peak_mem_mb'] / 1024:.1f} GB" if x["peak_mem_mb"] is not None else "—"
        md.append(f"| {x['side']} | {x['mode']} | {x['train']['median_s'] * 1e3:.0f} ms | "
                  f"{x['train_images_per_s']:.1f} | {x['infer_images_per_s']:.1f} | {mem} | {ratio} | "
                  f"{x['setup_and_warmup_s']:.0f} s | {x['coco_epoch_h']:.1f} h |")
    ours = next((x for x in r["rows"] if x["side"] == "ours" and x["mode"] == "fp32"), None)
    if theirs and ours:
        md += ["", f"fp32 eval losses on the same weights: ours {ours['eval_loss']:.5f} vs authors "
               f"{theirs['eval_loss']:.5f}."]
    if r.get("tiny_run"):
        md += ["", "### The default tiny run on this device (`python -m ablate`, timed end to end)", "",
               "| precision | wall time | AP | AP50 | status |", "|---|---|---|---|---|"]
        for t in r["tiny_run"]:
            m = t["metrics"]
            md.append(f"| {t['precision']} | {t['wall_s']:.0f} s | {m.get('AP', float('nan')):.3f} | "
                      f"{m.get('AP50', float('nan')):.3f} | {t['status'] or 'rc ' + str(t['returncode'])} |")
    return "\n".join(md)


def run(quick: bool, *, device: str = "cuda", smoke: bool = False, reference: Path = DEFAULT_REFERENCE,
        backend: str = "inductor", tiny_precisions: list[str] | None = None, out: Path | None = None) -> dict[str, Any]:
    if device == "cuda" and not torch.cuda.is_available():
        md = ("## GPU\n\nSkipped: no CUDA device on this machine (unmeasured). `python benchmarks/bench_gpu.py "
              "--tiny-run` runs this section where CUDA is available: R50 train step and inference, ours vs the "
              "authors', fp32 / bf16 / torch.compile, images/s, peak memory, and the default tiny run's wall time.")
        data: dict[str, Any] = {"skipped": "no CUDA device"}
        write_result("gpu", data, md, out=out)
        return data
    config, size, batch = ("smoke", 64, 2) if smoke else ("r50", (800, 1066), 2)
    warmup, steps = (1, 2) if smoke else (3, 5 if quick else 20)
    name = torch.cuda.get_device_name(0) if device == "cuda" else machine()["cpu"]
    data = {"device_name": name, "config": config, "input": [batch, 3, *((size, size) if isinstance(size, int)
            else size)], "warmup": warmup, "steps": steps, "backend": backend, "rows": [], "tiny_run": []}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        inputs, state = tmp / "inputs.pt", tmp / "authors_state.pt"
        make_inputs(inputs, batch, size)
        for side in ("authors", "ours"):  # theirs first: it writes the state dict ours loads
            for label, amp, compiled in MODES[side]:
                row = measure(side, label, amp, compiled, config=config, inputs=inputs, state=state,
                              reference=reference, device=device, backend=backend, warmup=warmup, steps=steps)
                data["rows"].append(row)
                print(f"{side} {label}: train {row['train']['median_s'] * 1e3:.0f} ms", file=sys.stderr)
                write_result("gpu", data, summarize(data), out=out)  # each row as it lands: a timeout keeps them
        data["tiny_run"] = tiny_run(device, smoke, tmp, tiny_precisions or [])
    write_result("gpu", data, summarize(data), out=out)
    return data


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 timed steps per row instead of 20")
    p.add_argument("--device", default="cuda")
    p.add_argument("--smoke", action="store_true", help="a tiny model and input: exercises every branch on CPU")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the authors' ConditionalDETR checkout")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("--tiny-run", nargs="*", choices=("fp32", "bf16"), metavar="PRECISION",
                   help="also time the default `python -m ablate` on the device (fp32 without a value)")
    p.add_argument("--out", type=Path, help="write gpu.json / gpu.md here instead of benchmarks/results")
    a = p.parse_args()
    run(a.quick, device=a.device, smoke=a.smoke, reference=a.reference, backend=a.compile_backend,
        tiny_precisions=(a.tiny_run or ["fp32"]) if a.tiny_run is not None else [], out=a.out)
