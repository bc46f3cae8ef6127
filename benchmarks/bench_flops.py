"""Where one default train step's time goes, against the machine's limit.

FLOPs of one default ``python -m ablate`` step by phase (``torch.utils.flop_counter.FlopCounterMode``: forward
split by module into backbone / encoder / decoder, then matching, loss, backward, optimizer), the attainable
GFLOP/s on the same threads (a large matmul, and a linear and a convolution of the step's own shapes), the
measured time of each phase (timestamps at module hooks, median over steps) and so achieved / attainable.
Each phase's aten-op count times the cost of one trivial op gives its fixed per-op floor (Python + dispatcher):
the part of the time no faster kernel can remove.

    python benchmarks/bench_flops.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import torch
from bench_common import machine, write_result
from default_step import DefaultStep, PhaseClock, timed_batches
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

PHASES = ("data", "backbone", "encoder", "decoder", "matching", "loss", "backward", "optimizer")


class OpCounter(TorchDispatchMode):
    """Counts aten ops dispatched (each one pays the fixed Python/dispatcher cost)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.n += 1
        return func(*args, **(kwargs or {}))


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def kernels(tokens: int, d: int, ff: int, conv_shape: tuple[int, int, int, int]) -> dict[str, tuple[Any, float]]:
    """The reference kernels, fp32 and bf16: name → (call, FLOPs). The step's linear and 3×3 conv shapes."""
    out: dict[str, tuple[Any, float]] = {}
    for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        n = 2048
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out[f"matmul_{n}_{tag}"] = (lambda a=a, b=b: a @ b, 2 * n**3)
        x, w = torch.randn(tokens, d, dtype=dtype), torch.randn(ff, d, dtype=dtype)
        out[f"linear_step_{tag}"] = (lambda x=x, w=w: torch.nn.functional.linear(x, w), 2 * tokens * d * ff)
        bsz, c, h, wd = conv_shape
        img = torch.randn(bsz, c, h, wd, dtype=dtype).contiguous(memory_format=torch.channels_last)
        k = torch.randn(c, c, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
        out[f"conv_step_{tag}"] = (lambda img=img, k=k: torch.nn.functional.conv2d(img, k, padding=1),
                                   2 * bsz * c * c * 9 * h * wd)
    t = torch.ones(1)
    out["trivial_op"] = (lambda t=t: [t.add(1) for _ in range(1000)], 0.0)
    return out


def sample_kernels(ks: dict[str, tuple[Any, float]], acc: dict[str, list[float]], reps: int = 2) -> None:
    """Time each reference kernel (best of ``reps`` calls) between two train steps, so it sees the same load."""
    for name, (fn, _) in ks.items():
        fn()
        acc.setdefault(name, []).append(min(_timed(fn) for _ in range(reps)))


def rates(ks: dict[str, tuple[Any, float]], acc: dict[str, list[float]]) -> dict[str, float]:
    """GFLOP/s from the median sample (load-matched to the step's median) and the best one (the peak seen)."""
    out = {}
    for name, (_, flops) in ks.items():
        if name == "trivial_op":
            out["trivial_op_us"] = statistics.median(acc[name]) * 1e3  # 1000 calls
            continue
        out[name] = flops / statistics.median(acc[name]) / 1e9
        out[f"{name}_best"] = flops / min(acc[name]) / 1e9
    return out


def count_step(step: DefaultStep, batch: Any) -> dict[str, dict[str, float]]:
    """FLOPs and aten-op counts of one step, by phase (the step is really taken)."""
    images, mask, targets, num_boxes = batch
    images = images.contiguous(memory_format=step.default.memory_format)
    res: dict[str, dict[str, float]] = {}

    def counted(name: str, fn: Any) -> Any:
        with FlopCounterMode(display=False) as fc, OpCounter() as oc:
            out = fn()
        res[name] = {"flops": float(fc.get_total_flops()), "ops": oc.n}
        return out, fc

    outputs, fc = counted("forward", lambda: step.model(images, mask))
    by_module = {k: float(sum(v.values())) for k, v in fc.get_flop_counts().items()}
    fwd = res.pop("forward")
    backbone = by_module.get("Detector.backbone", 0.0)
    encoder = by_module.get("Detector.input_proj", 0.0) + by_module.get("Detector.transformer.encoder", 0.0)
    res["backbone"] = {"flops": backbone, "ops": float("nan")}
    res["encoder"] = {"flops": encoder, "ops": float("nan")}
    res["decoder"] = {"flops": fwd["flops"] - backbone - encoder, "ops": float("nan")}
    res["forward"] = fwd
    detached = {k: v.detach() for k, v in outputs.items() if k in ("all_logits", "all_boxes")}
    counted("matching", lambda: step.criterion.matcher(detached["all_logits"], detached["all_boxes"], targets))
    losses, _ = counted("criterion", lambda: step.criterion(outputs, targets, num_boxes))
    res["loss"] = {k: res["criterion"][k] - res["matching"][k] for k in ("flops", "ops")}
    step.default.optimizer.zero_grad(set_to_none=True)
    counted("backward", lambda: losses["loss"].backward())

    def update() -> None:
        torch.nn.utils.clip_grad_norm_(step.model.parameters(), step.clip)
        step.default.optimizer.step()

    counted("optimizer", update)
    return res


def op_counts_by_phase(step: DefaultStep, batch: Any) -> dict[str, int]:
    """aten ops per phase of one step, from the op counter read at the phase clock's boundaries."""
    counter = OpCounter()
    clock = PhaseClock(step)
    seen: dict[str, int] = {}
    original = clock._at

    def at(name: str) -> None:
        seen[name] = counter.n
        original(name)

    clock._at = at  # type: ignore[method-assign]
    with counter:
        step.step(batch, mark=clock.mark)
    clock.remove()
    return {
        "backbone": seen["backbone"] - seen["start"], "encoder": seen["encoder"] - seen["backbone"],
        "decoder": seen["forward"] - seen["encoder"], "matching": seen["match_end"] - seen["match_start"],
        "loss": seen["criterion"] - seen["forward"] - (seen["match_end"] - seen["match_start"]),
        "backward": seen["backward"] - seen["criterion"], "optimizer": seen["optimizer"] - seen["backward"],
    }


def run(quick: bool, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    step = DefaultStep()
    n_steps = 3 if quick else 12
    for batch, _ in timed_batches(step, 2):  # warm-up (allocator, first-use kernels)
        step.step(batch)
    batch = step.next_batch()
    flops = count_step(step, batch)
    ops = op_counts_by_phase(step, step.next_batch())
    m = step.cfg.model
    tokens = step.cfg.train.batch_size * (144 // 16) ** 2
    ks = kernels(tokens, m.hidden_dim, m.dim_feedforward, (step.cfg.train.batch_size, 64, 18, 18))
    samples: dict[str, list[float]] = {}
    clock = PhaseClock(step)
    times: dict[str, list[float]] = {p: [] for p in (*PHASES, "other", "step")}
    shapes = []
    for batch, t_data in timed_batches(step, n_steps):
        t0 = time.perf_counter()
        step.step(batch, mark=clock.mark)
        total = time.perf_counter() - t0 + t_data
        phases = clock.phases(t_data)
        for k, v in phases.items():
            times[k].append(v)
        times["other"].append(total - sum(phases.values()))
        times["step"].append(total)
        shapes.append(list(batch[0].shape))
        sample_kernels(ks, samples)  # interleaved with the steps: the same background load
    clock.remove()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"settings": {"quick": quick, "threads": threads, "steps_timed": n_steps, "batch_shapes": shapes,
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "load_avg_1m_at_end": os.getloadavg()[0]},
            "flops": flops, "ops": ops, "times_s": times, "median_s": med, "attainable": rates(ks, samples)}


def summarize(r: dict[str, Any]) -> str:
    s, f, med, a, ops = r["settings"], r["flops"], r["median_s"], r["attainable"], r["ops"]
    peak = a["matmul_2048_fp32"]
    per_op = a["trivial_op_us"] * 1e-6
    fwd_bwd = f["forward"]["flops"] + f["criterion"]["flops"] + f["backward"]["flops"]
    lines = [
        "## One default train step against the machine's limit",
        "",
        f"{r['machine']['cpu']}, {s['threads']} torch thread(s) (the default run uses torch's default, 2), "
        f"{s['date']}. "
        "**The machine was shared with other agents' jobs the whole time (load average "
        f"{s['load_avg_1m_at_end']:.0f} on 2 cores at the end), so absolute times are inflated and noisy**; the "
        "FLOP counts are exact, and the attainable rates were sampled between the steps (same load), so the "
        f"achieved / attainable fractions are the load-matched figures. Median of {s['steps_timed']} steps of the "
        f"default `python -m ablate` (batch 32, padded sizes {sorted({tuple(x[-2:]) for x in s['batch_shapes']})}).",
        "",
        f"One step: **{fwd_bwd / 1e9:.2f} GFLOP** (forward + matching + loss + backward; `flop_counter` counts "
        f"matmul/conv/attention only), {med['step'] * 1e3:.0f} ms → {fwd_bwd / med['step'] / 1e9:.1f} GFLOP/s "
        f"= **{fwd_bwd / med['step'] / 1e9 / peak:.0%} of the fp32 matmul rate** measured alongside "
        f"({peak:.0f} GFLOP/s median, {a['matmul_2048_fp32_best']:.0f} best).",
        "",
        f"Attainable on {s['threads']} thread(s) (median between steps / best seen): fp32 matmul 2048² "
        f"{a['matmul_2048_fp32']:.0f} / {a['matmul_2048_fp32_best']:.0f} GFLOP/s, the step's encoder FFN linear "
        f"{a['linear_step_fp32']:.0f} / {a['linear_step_fp32_best']:.0f}, the step's 3×3 conv (64→64, 18×18, "
        f"NHWC) {a['conv_step_fp32']:.0f} / {a['conv_step_fp32_best']:.0f}; bf16 (AMX): matmul "
        f"{a['matmul_2048_bf16']:.0f} / {a['matmul_2048_bf16_best']:.0f}, linear {a['linear_step_bf16']:.0f} / "
        f"{a['linear_step_bf16_best']:.0f}, conv {a['conv_step_bf16']:.0f} / {a['conv_step_bf16_best']:.0f}. "
        f"One trivial aten op (Python → dispatcher → kernel, 1-element add): {a['trivial_op_us']:.1f} µs.",
        "",
        "| phase | GFLOP | ms | share | GFLOP/s | of fp32 matmul | of same-shape kernel | aten ops | per-op floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    kernel = {"backbone": a["conv_step_fp32"], "encoder": a["linear_step_fp32"], "decoder": a["linear_step_fp32"]}
    for p in PHASES:
        gf = f[p]["flops"] / 1e9 if p in f else 0.0
        t = med[p]
        rate = gf / t if t > 0 else 0.0
        n = ops.get(p)
        floor = f"{n * per_op * 1e3:.0f} ms ({n * per_op / t:.0%})" if n else "—"
        lines.append(
            f"| {p} | {gf:.2f} | {t * 1e3:.0f} | {t / med['step']:.0%} | {rate:.1f} | {rate / peak:.0%} | "
            f"{f'{rate / kernel[p]:.0%}' if p in kernel else '—'} | {n if n else '—'} | {floor} |")
    lines += [
        f"| other (bookkeeping, hooks) | 0 | {med['other'] * 1e3:.0f} | {med['other'] / med['step']:.0%} | | | | | |",
        f"| **step** | {fwd_bwd / 1e9:.2f} | {med['step'] * 1e3:.0f} | 100% "
        f"| {fwd_bwd / med['step'] / 1e9:.1f} | {fwd_bwd / med['step'] / 1e9 / peak:.0%} | — | "
        f"{sum(ops.values())} | {sum(ops.values()) * per_op * 1e3:.0f} ms |",
        "",
        "Phases: backbone = the tiny CNN forward; encoder = input projection, key positions and the 2 encoder "
        "layers; decoder = reference points, the 3 decoder layers and the heads; matching = the cost matrices of "
        "all layers + scipy's Hungarian; loss = the rest of the criterion; backward = zero_grad + backward; "
        "optimizer = grad clipping + fused AdamW + lr schedule; data = the loader (main process) producing the "
        "batch. Per-op floor = aten ops × one trivial op's cost: the Python/dispatcher part of the phase "
        "that faster kernels cannot remove (backward ops run in C++ autograd, so its floor overstates).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the default run uses torch's default: 2)")
    p.add_argument("--name", default="flops", help="result file name in benchmarks/results/")
    p.add_argument("--summarize", action="store_true", help="rewrite <name>.md from <name>.json, measure nothing")
    a = p.parse_args()
    if a.summarize:
        from bench_common import RESULTS

        res = json.loads((RESULTS / f"{a.name}.json").read_text())
        (RESULTS / f"{a.name}.md").write_text(summarize(res) + "\n")
    else:
        res = run(a.quick, a.threads)
        write_result(a.name, res, summarize({**res, "machine": machine()}))
    print(summarize({**res, "machine": res.get("machine", machine())}))
