"""Run every benchmark and write benchmarks/results/SUMMARY.md.

    python benchmarks/run.py [--quick] [--reference ../shared/reference/ConditionalDETR] [--threads 1] [--only NAME]

Each benchmark runs in its own process and writes results/<name>.json and .md; the train-step benchmark also
starts one worker process per implementation (the two codebases clash on top-level module names).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench_common import DEFAULT_REFERENCE, HERE, RESULTS, machine

# (name, script, result file) in run order; the cheap ones first
BENCHMARKS = [
    ("attention", "bench_attention.py", "attention"),
    ("eval", "bench_eval.py", "coco_eval"),
    ("data", "bench_data.py", "data_pipeline"),
    ("gpu", "bench_gpu.py", "gpu"),
    ("flops", "bench_flops.py", "flops"),  # the default step against the machine's limit, by phase
    ("levers", "bench_levers.py", "levers"),  # bf16, compile, channels_last, threads: interleaved ratios
    ("train", "bench_train.py", "train_step"),
]

NOTES = """
### What makes ours faster, and why R50 stays above 0.8×

Optimizations in ablate (all keep the parity tests green; eval numerics unchanged):

* **Fused AdamW** (`engine/train.py: build_optimizer`): one kernel per step instead of ~6 elementwise passes
  per parameter tensor in the for-each-parameter CPU default (the authors' AdamW); profiled 52 vs 146 ms of a
  43 M-parameter R50 step on one core.
* **Attention with dropout on CPU takes the explicit softmax path** (`models/attention.py: attend`): SDPA's CPU
  math kernel (the one used with dropout) adds three NaN-safe passes (isneginf / all / where) over the logits;
  ~15% faster attention fwd+bwd in training. Without dropout (eval, the tiny default) SDPA's fused kernel is kept.
* **Per-query terms computed once per batch** (`models/decoder.py: per_query`, `models/detector.py`): the object
  queries o_q, the reference points s and p_s are identical for every image, so `sa_qpos_proj`, `sa_kpos_proj`,
  `ca_qpos_proj`, the reference MLP and the sine embedding run on (1, Q, d) and broadcast, instead of on B copies
  (31/32 of that work saved at the tiny default's batch 32).
* **Match flattening vectorised** (`losses/criterion.py: flatten_matches`): one gather over the concatenated
  targets instead of ~5 small tensor ops per (decoder layer, image) pair (~500 ops per tiny step).
* Already in place and used here as the trainer uses it: `train.channels_last=true` (NHWC convolutions), batched
  matching costs for all decoder layers with one device-to-host copy, all layers' losses in one vectorised pass.

Why the R50 ratio misses 0.8×: on CPU the step is dominated by work both implementations must do with the same
kernels — ResNet-50 convolutions (forward + backward of layer2–4), the 256-d linears of 6 + 6 transformer layers
at 300 queries, and dropout's Bernoulli masks: 73% of our profiled step (table above). Our savings (optimizer,
attention, per-query terms, channels-last convolutions) remove what is removable without changing the math.
Measured once with scratch scripts (not kept as benchmarks) and not adopted, each a hand-written replacement
of a library op: folding FrozenBatchNorm2d into the convolution weights (ResNet-50 layer1–4 fwd+bwd at
2×3×320×320: 0.77 vs 0.81 s, −4.4%; outputs equal to 1e-5 relative), dropout masks from `rand_like(x) >= p`
instead of `bernoulli_` (mask generation on 1.2 M elements: 4.5 vs 6.4 ms), and 1×1 convolutions as `linear` on
NHWC views (fwd+bwd −1…−18% on five of ResNet-50's 1×1 shapes, +8% on a sixth). From the step breakdown above,
each would save an estimated 1–2% of the R50 step. Together they would not reach 0.8×.
The tiny-shaped comparison has less backbone and more per-layer overhead, so it gains more.

The train-step comparison (first table) was measured with the other work on the machine paused (SIGSTOP), 1
thread per process; the attention, evaluation and data sections come from an earlier run on 2 cores shared
with training jobs (load 5–8), so their absolute times move with the load, their ratios much less.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions (a few minutes)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the authors' ConditionalDETR checkout")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per benchmark process")
    p.add_argument("--only", choices=[b[0] for b in BENCHMARKS], action="append")
    a = p.parse_args()
    failed = []
    for name, script, _ in BENCHMARKS:
        if a.only and name not in a.only:
            continue
        cmd = [sys.executable, str(HERE / script)] + (["--quick"] if a.quick else [])
        if name in ("attention", "data", "train", "flops"):
            cmd += ["--threads", str(a.threads)]
        if name == "train":
            cmd += ["--reference", str(a.reference.resolve())]
        t0 = time.perf_counter()
        print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
        rc = subprocess.call(cmd, cwd=HERE)
        print(f"[{name}] exit {rc} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    write_summary(a.quick, a.threads)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def write_summary(quick: bool, threads: int) -> None:
    m = machine()
    parts = [
        "# Benchmarks" + (" (--quick)" if quick else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {threads} torch thread(s) per process, "
        f"{'CUDA: ' + m['cuda'] if m['cuda'] else 'no GPU'}. Reproduce: `python benchmarks/run.py"
        + (" --quick" if quick else "") + "`.",
    ]
    for _, _, result in sorted(BENCHMARKS, key=lambda b: b[0] != "train"):  # the side-by-side table first
        md = RESULTS / f"{result}.md"
        if md.is_file():
            parts += ["", md.read_text().replace("\n## ", "\n### ").replace("## ", "### ", 1).rstrip()]
    parts += ["", NOTES.strip()]
    (RESULTS / "SUMMARY.md").write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
