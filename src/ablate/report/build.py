"""write_report: gather a sweep and write its tables, figures and index.md into one folder."""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ablate.report import atomic
from ablate.report.convergence import convergence_table, reference_variant, write_convergence
from ablate.report.figures import write_figures
from ablate.report.gather import gather, gather_wandb, load_curves
from ablate.report.index import render_index
from ablate.report.orderings import ordering_table, write_orderings
from ablate.report.tables import format_table, summarize, write_tables

if TYPE_CHECKING:  # attention.py imports torch; the report itself does not need it
    from ablate.report.attention import AttentionFn


def write_report(dirs: Iterable[Path | str], out: Path | str | None = None, *, title: str | None = None,
                 wandb: str | None = None, attention_fn: AttentionFn | None = None,
                 command: str | None = None, log_wandb: bool = True) -> Path:
    """Write the report of the job folders under `dirs` into `out` (default `<first dir>/report`); return `out`.

    Files: table.md/.csv/.tex, jobs.csv, ap_bars.png, convergence.png and loss.png (when curves exist),
    convergence.md/.csv (when a DETR variant and another variant have eval curves), orderings.md/.csv (when two
    variants have a paper AP: which of the paper's orderings hold here), index.md. `wandb`
    (ENTITY/PROJECT) also lists that project's runs (wandb_runs.csv, online only) and logs the report as a run
    (job_type "report"), unless `log_wandb` is False. Raises NoJobsFound when no job folder exists.
    """
    dirs = [Path(d) for d in dirs]
    df = gather(dirs)
    out = Path(out) if out is not None else dirs[0] / "report"
    title = title or f"Ablation report: {dirs[0].resolve().name}"
    command = command or "python -m ablate.report " + shlex.join([*map(str, dirs), "--out", str(out)])
    summary = summarize(df)
    table = format_table(summary)
    curves = load_curves(df)
    notes: list[str] = []

    files = write_tables(summary, out)
    files["jobs.csv"] = atomic.write_text(out / "jobs.csv", df.to_csv(index=False))
    figures = write_figures(df, summary, curves, out, title=title)
    files.update(figures)

    convergence_md = None
    reference = reference_variant(summary)
    conv = convergence_table(curves, reference, order=list(summary.index)) if reference else None
    if conv is not None and len(conv) > 1:
        written = write_convergence(conv, out)
        files.update(written)
        convergence_md = written["convergence.md"].read_text(encoding="utf-8")

    orderings_md = None
    orderings = ordering_table(df, summary)
    if orderings is not None:
        written = write_orderings(orderings, out)
        files.update(written)
        orderings_md = written["orderings.md"].read_text(encoding="utf-8")

    if attention_fn is not None:
        try:
            for path in attention_fn(out):
                files[Path(path).name] = Path(path)
        except Exception as exc:  # a drawing hook must not cost the user the rest of the report
            notes.append(f"attention maps not drawn: {type(exc).__name__}: {exc}")
            warnings.warn(notes[-1], stacklevel=2)

    if wandb:
        group = _wandb_group(df, dirs)
        try:
            runs = gather_wandb(wandb, group=group)
            files["wandb_runs.csv"] = atomic.write_text(out / "wandb_runs.csv", runs.to_csv(index=False))
            notes.append(f"W&B runs of `{wandb}` group `{group}`: {len(runs)} (listed, not merged into the table)")
        except RuntimeError as exc:
            notes.append(f"W&B runs not gathered: {exc}")
        if log_wandb:
            notes.append(_log_to_wandb(wandb, group, table, summary, figures, out))

    index = render_index(title=title, command=command, dirs=dirs, df=df, table=table, files=files, out=out,
                         convergence_md=convergence_md, orderings_md=orderings_md, notes=notes)
    atomic.write_text(out / "index.md", index)
    return out


def _wandb_group(df: pd.DataFrame, dirs: list[Path]) -> str:
    # The engine names the W&B group after the sweep; result.json may record it, else use the sweep folder name.
    groups = df["wandb_group"].dropna()
    return str(groups.iloc[0]) if len(groups) else dirs[0].resolve().name


def _log_to_wandb(entity_project: str, group: str, table: pd.DataFrame, summary: pd.DataFrame,
                  figures: dict[str, Path], out: Path) -> str:
    from ablate.report.wandb_report import log_report, wandb_mode

    try:
        run_dir = log_report(entity_project, group, table, summary, figures, out)
    except Exception as exc:  # W&B trouble (service start, auth) must not lose the files already written
        return f"report not logged to W&B: {type(exc).__name__}: {exc}"
    if run_dir is None:
        return "report not logged to W&B (disabled or not installed)"
    return f"report logged to W&B ({wandb_mode()}, job_type `report`, group `{group}`): `{run_dir}`"
