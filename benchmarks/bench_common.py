"""Shared helpers of the benchmarks: timing statistics, machine description, result files, worker processes.

Named ``bench_common`` (not ``common``/``util``) so it never shadows the authors' top-level packages
(``models``, ``util``, ``datasets``) in the worker that imports their code.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "ConditionalDETR"


def stats(times: list[float]) -> dict[str, float]:
    """Median and spread (min, max, IQR) of a list of seconds."""
    qs = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "iqr_s": qs[2] - qs[0], "n": len(times)}


def machine() -> dict[str, Any]:
    import torch

    from ablate.runs.machine import cpu_model

    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    return info


def write_result(name: str, data: dict[str, Any], summary_md: str, out: Path | None = None) -> None:
    """<name>.json and <name>.md in benchmarks/results (or ``out``: a test's scratch folder)."""
    folder = out or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": machine(), **data}
    (folder / f"{name}.json").write_text(json.dumps(data, indent=2, default=float) + "\n")
    (folder / f"{name}.md").write_text(summary_md.rstrip() + "\n")


class Worker:
    """A long-lived ``step_worker.py`` process driven by JSON lines (one request → one reply).

    The two codebases clash on top-level module names, so each side lives in its own interpreter; keeping
    them alive lets the parent alternate timed blocks between them (interleaving cancels background load).
    """

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "step_worker.py"), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT, bufsize=1)

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died on {request} (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"worker failed on {request}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call(cmd="quit")
            except (RuntimeError, BrokenPipeError):
                pass
            self.proc.wait(timeout=60)


def ratio_line(ours: float, theirs: float, target: float) -> str:
    r = ours / theirs
    return f"{r:.2f}× ({'meets' if r <= target else 'misses'} the ≤ {target}× target)"


def main(run: Any, doc: str | None) -> None:
    """The command line every benchmark script shares: ``--quick`` and ``--threads``."""
    import argparse

    import torch

    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    run(a.quick)
