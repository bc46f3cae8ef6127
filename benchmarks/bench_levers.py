"""Levers for the default ``model=tiny`` train step, measured interleaved in one process.

Every variant trains its own copy of the same initial model on the same batches; each round runs one block of
every variant (the order rotates), so background load hits them alike and the per-round ratio to the default
cancels most of it. Variants: threads 1 vs 2, channels_last off, bf16 autocast (model under
``torch.autocast("cpu", dtype=torch.bfloat16)``, criterion in fp32 on ``.float()`` outputs),
``torch.compile(model, dynamic=True)`` (one graph for every multi-scale batch size; compile time counted
separately and as a break-even step count), and the compiled model with a compiled criterion.

    python benchmarks/bench_levers.py [--quick] [--no-compile] [--name levers]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
import traceback
from typing import Any

# a cold compile every time (what a fresh checkout pays), done in this process so its CPU time is counted
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="ablate_levers_inductor_"))
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch  # noqa: E402
from bench_common import machine, write_result  # noqa: E402
from default_step import Batch, DefaultStep, Replica  # noqa: E402

BASE = "fp32, NHWC, 2 threads (today's default)"


def variants(compile_: bool, quick: bool) -> dict[str, dict[str, Any]]:
    v: dict[str, dict[str, Any]] = {
        BASE: {"threads": 2},
        "fp32, NHWC, 1 thread": {"threads": 1},
        "fp32, NCHW (channels_last off), 2 threads": {"threads": 2, "nchw": True},
        "bf16 autocast, 2 threads": {"threads": 2, "bf16": True},
        "bf16 autocast, 1 thread": {"threads": 1, "bf16": True},
    }
    if compile_:
        v["compile(model), 1 thread"] = {"threads": 1, "compile": "model"}
    if compile_ and not quick:  # each is another cold compile of forward + backward
        v["compile(model), 2 threads"] = {"threads": 2, "compile": "model"}
        v["compile(model) + bf16, 1 thread"] = {"threads": 1, "compile": "model", "bf16": True}
        v["compile(model) + compile(loss), 1 thread"] = {"threads": 1, "compile": "both"}
    return v


def reference(name: str, names: list[str]) -> str | None:
    """The eager fp32 NHWC variant with the same thread count: what a lever is compared with."""
    ref = BASE if "2 threads" in name else "fp32, NHWC, 1 thread"
    return ref if ref in names else None


def make_replica(step: DefaultStep, spec: dict[str, Any]) -> Replica:
    r = Replica(step, torch.contiguous_format if spec.get("nchw") else torch.channels_last)
    if spec.get("compile") in ("model", "both"):
        r.forward = torch.compile(r.model, dynamic=True)
    if spec.get("compile") == "both":
        r.criterion = torch.compile(step.criterion, dynamic=True)
    return r


def dynamo_counts() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {"frames_compiled": int(counters["stats"].get("unique_graphs", 0)),
            "recompiles": int(sum(counters["recompiles"].values())) if "recompiles" in counters else 0,
            "graph_breaks": int(sum(counters["graph_break"].values()))}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (inductor's gcc calls): unlike wall time, it barely
    depends on what else runs on the machine, so it estimates what the compile costs on an idle one."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(quick: bool, compile_: bool, only: list[str] | None = None) -> dict[str, Any]:
    step = DefaultStep()
    specs = {k: v for k, v in variants(compile_, quick).items() if not only or any(o in k for o in only)}
    rounds = 2 if quick else 5
    batches: list[Batch] = [step.next_batch() for _ in range(rounds + 2)]
    replicas, warm, first_loss, errors = {}, {}, {}, {}
    for name, spec in specs.items():  # warm-up: two steps each (the compiled ones compile here)
        torch.set_num_threads(spec["threads"])
        before = dynamo_counts()
        try:
            r = make_replica(step, spec)
            c0, t0 = cpu_seconds(), time.perf_counter()
            first_loss[name] = step.step(batches[0], r, bf16=spec.get("bf16", False))
            c1, t1 = cpu_seconds(), time.perf_counter()
            step.step(batches[1], r, bf16=spec.get("bf16", False))
            warm[name] = {"first_s": t1 - t0, "first_cpu_s": c1 - c0, "second_s": time.perf_counter() - t1,
                          "second_cpu_s": cpu_seconds() - c1,
                          "dynamo": {k: v - before[k] for k, v in dynamo_counts().items()}}
            replicas[name] = r
        except Exception as e:  # a lever that does not work here is a result, not a crash
            traceback.print_exc()
            errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
    times: dict[str, list[float]] = {n: [] for n in replicas}
    names = list(replicas)
    shapes = []
    for r_i in range(rounds):
        batch = batches[2 + r_i]
        shapes.append(list(batch[0].shape))
        order = names[r_i % len(names):] + names[: r_i % len(names)]
        for name in order:
            spec = specs[name]
            torch.set_num_threads(spec["threads"])
            t0 = time.perf_counter()
            step.step(batch, replicas[name], bf16=spec.get("bf16", False))
            times[name].append(time.perf_counter() - t0)
    torch.set_num_threads(2)
    recompiles_after_warmup = dynamo_counts()
    return {"settings": {"quick": quick, "rounds": rounds, "batch_shapes": shapes,
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "load_avg_1m_at_end": os.getloadavg()[0], "steps_default_run": 2500},
            "times_s": times, "warmup": warm, "first_loss": first_loss, "errors": errors,
            "dynamo_total": recompiles_after_warmup}


def summarize(r: dict[str, Any]) -> str:
    s, times, warm = r["settings"], r["times_s"], r["warmup"]
    lines = [
        "## Levers for the default train step (interleaved, one process)",
        "",
        f"{r['machine']['cpu']} (2 cores, AMX-BF16 / AVX512-BF16 per `lscpu`), torch {r['machine']['torch']}, "
        f"{s['date']}. **The machine was loaded by other agents' jobs throughout (load average "
        f"{s['load_avg_1m_at_end']:.0f} on 2 cores at the end): absolute times are inflated and noisy; read the "
        "ratios**, which are medians of per-round ratios (each round runs one step of every variant on the same "
        f"batch, order rotating). {s['rounds']} rounds; batch 32, padded sizes "
        f"{sorted({tuple(x[-2:]) for x in s['batch_shapes']})}. Each variant trains its own copy of the same "
        "initial weights.",
        "",
        "| variant | median step | vs 2-thread default | vs eager fp32 NHWC, same threads | first step | "
        "first-step loss |",
        "|---|---|---|---|---|---|",
    ]

    def ratio(name: str, ref: str | None) -> str:
        if ref is None or ref not in times:
            return "—"
        return f"**{statistics.median(a / b for a, b in zip(times[name], times[ref])):.2f}×**"

    for name, t in times.items():
        w = warm[name]
        extra = w["first_s"] - statistics.median(t)
        cpu = f", {w['first_cpu_s']:.0f} s CPU" if "first_cpu_s" in w else ""
        comp = f"{w['first_s']:.1f} s wall{cpu}" + (
            f" (≈ {extra:.0f} s wall of compile; {w['dynamo']['frames_compiled']} graphs, "
            f"{w['dynamo']['graph_breaks']} breaks)" if "compile" in name else "")
        lines.append(f"| {name} | {statistics.median(t) * 1e3:.0f} ms | {ratio(name, BASE)} | "
                     f"{ratio(name, reference(name, list(times)))} | {comp} | {r['first_loss'][name]:.4f} |")
    for name, err in r["errors"].items():
        lines.append(f"| {name} | failed: {err} | | | | |")
    lines += ["", "Dynamo totals after all timed rounds (recompiles across the multi-scale sizes would show here): "
              f"{r['dynamo_total']}."]
    for name, t in times.items():
        ref = reference(name, list(times))
        if "compile" in name and ref is not None:
            saved = statistics.median(times[ref]) - statistics.median(t)
            extra = warm[name]["first_s"] - statistics.median(t)
            cpu = warm[name]["first_cpu_s"] - warm[name]["second_cpu_s"]
            if saved > 0:
                lines.append(f"- {name}: ≈ {cpu:.0f} s of CPU time to compile (≈ the wall time on an idle "
                             f"machine); at the measured saving it pays back after ≈ {extra / saved:.0f} steps "
                             f"(the default run has {s['steps_default_run']}).")
            else:
                lines.append(f"- {name}: ≈ {cpu:.0f} s of CPU time to compile and no saving per step here, so "
                             "it is never paid back.")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    p.add_argument("--name", default="levers", help="result file name in benchmarks/results/")
    p.add_argument("--only", action="append", default=[],
                   help="keep the default and the variants whose name contains this text (repeatable)")
    p.add_argument("--summarize", action="store_true", help="rewrite <name>.md from <name>.json, measure nothing")
    a = p.parse_args()
    if a.summarize:
        from bench_common import RESULTS

        res = json.loads((RESULTS / f"{a.name}.json").read_text())
        text = summarize(res)
        (RESULTS / f"{a.name}.md").write_text(text + "\n")
    else:
        res = run(a.quick, not a.no_compile, a.only)
        text = summarize({**res, "machine": machine()})
        write_result(a.name, res, text)
    print(text)
