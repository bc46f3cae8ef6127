"""Publish a sweep's report into reports/NAME with the command, date, machine and wall time that made it.

    python reports/publish.py NAME "SWEEP COMMAND" SWEEP_DIR [SWEEP_DIR ...] [-- REPORT OPTIONS]

Runs `python -m ablate.report SWEEP_DIR... --out reports/NAME REPORT OPTIONS` and writes reports/NAME/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from ablate.runs.machine import cpu_model


def main(argv: list[str]) -> int:
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    else:
        extra = []
    name, command, *sweeps = argv
    out = Path(__file__).resolve().parent / name
    report = [sys.executable, "-m", "ablate.report", *sweeps, "--out", os.path.relpath(out), "--no-wandb", *extra]
    subprocess.run(report, check=True)
    # sweep folders (their jobs) and single job folders alike
    files = {f.resolve() for s in sweeps for f in [*Path(s).glob("*/result.json"), Path(s) / "result.json"]
             if f.is_file()}
    results = [json.loads(f.read_text()) for f in sorted(files)]
    wall = sum(r.get("wall_time_s") or 0 for r in results)
    status: dict[str, int] = {}
    for r in results:
        status[r.get("status", "?")] = status.get(r.get("status", "?"), 0) + 1
    load = os.getloadavg()
    given = {o for r in results for o in r.get("overrides") or [] if o.startswith("train.num_threads=")}
    threads = ", ".join(f"`{o}`" for o in sorted(given)) if given else "the default torch thread count"
    starts = sorted(r["started_at"] for r in results if r.get("started_at"))
    ends = sorted(r["finished_at"] for r in results if r.get("finished_at"))
    # the CPU the jobs recorded (result.json `machine`), else this machine's (jobs written before it was recorded)
    here = cpu_model()
    cpus = sorted({(r.get("machine") or {}).get("cpu") or here for r in results}) or [here]
    span = f"from {starts[0][:16].replace('T', ' ')} to {ends[-1][:16].replace('T', ' ')} UTC" if starts and ends else "?"
    text = f"""# {name}

- Made by: `{command}`, then `python -m ablate.report {' '.join(shlex.quote(s) for s in sweeps)} --out reports/{name} {' '.join(extra)}`
- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC (published); runs {span}
- Machine: {' / '.join(cpus)}, {os.cpu_count()} CPU cores, {platform.python_implementation()} {platform.python_version()}, no GPU
- Jobs: {len(results)} ({', '.join(f'{v} {k}' for k, v in sorted(status.items()))}); summed job wall time {wall / 60:.0f} min
  (jobs ran with {threads}, several at a time on a machine shared with other work, 1-min load average
  at publication {load[0]:.1f}: wall times are not benchmarks)

See [index.md](index.md) for the table and figures.
"""
    readme = out / "README.md"
    if readme.is_file() and "\nNotes" in readme.read_text():  # hand-written notes survive a regeneration
        text += "\nNotes" + readme.read_text().split("\nNotes", 1)[1]
    readme.write_text(text)
    print(f"published {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
