"""write_report: gather a sweep and write its tables, figures and index.md into one folder."""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from ablate.report import atomic
from ablate.report.baseline import compare_sweeps, write_baseline
from ablate.report.convergence import convergence_table, reference_variant, write_convergence
from ablate.report.figures import write_figures
from ablate.report.gather import gather, gather_wandb, load_curves
from ablate.report.index import Sections, render_index
from ablate.report.job_figures import job_figures
from ablate.report.orderings import ordering_table, summary_lines, write_orderings
from ablate.report.per_class import per_class_table, write_per_class
from ablate.report.settle import settle_line, settle_orderings, settle_variants
from ablate.report.tables import display_table, summarize, write_tables

# A report hook: given the report folder, writes figures there and returns their paths.
AttentionFn = Callable[[Path], list[Path]]


def write_report(dirs: Iterable[Path | str], out: Path | str | None = None, *, title: str | None = None,
                 wandb: str | None = None, attention_fn: AttentionFn | None = None,
                 command: str | None = None, log_wandb: bool = True,
                 baseline: Iterable[Path | str] | None = None) -> Path:
    """Write the report of the job folders under `dirs` into `out` (default `<first dir>/report`); return `out`.

    Files: table.md/.csv/.tex, jobs.csv, ap_bars.png, convergence.png and loss.png (when curves exist),
    convergence.md/.csv (when a DETR variant and another variant have eval curves), orderings.md/.csv (when two
    variants have a paper AP: which of the paper's orderings hold here), per_class.md/.csv (when result.json has
    `per_class`), baseline.md/.csv (with `baseline`: the sweep folders to compare with), index.md. Attention
    figures the jobs hold (`python -m ablate.attention`) are linked. `wandb` (ENTITY/PROJECT) also lists that
    project's runs (wandb_runs.csv, online only) and logs the report as a run (job_type "report"), unless
    `log_wandb` is False. Raises NoJobsFound when no job folder exists.
    """
    dirs = [Path(d) for d in dirs]
    df = gather(dirs)
    old = gather([Path(d) for d in baseline]) if baseline else None  # fails before anything is written
    out = Path(out) if out is not None else dirs[0] / "report"
    title = title or f"Ablation report: {dirs[0].resolve().name}"
    command = command or "python -m ablate.report " + shlex.join([*map(str, dirs), "--out", str(out)])
    summary = summarize(df)
    table = display_table(summary)
    curves = load_curves(df)
    sections = Sections()

    files = write_tables(summary, out)
    jobs = df.drop(columns=["labels", "per_class"]).assign(label=df["variant"].map(summary["label"]))
    files["jobs.csv"] = atomic.write_text(out / "jobs.csv", jobs.to_csv(index=False))
    figures = write_figures(df, summary, curves, out, title=title)
    files.update(figures)
    files.update(_convergence(summary, curves, out, sections))
    files.update(_orderings(df, summary, curves, out, sections))
    per_class = per_class_table(df, summary)
    if per_class is not None:
        files.update(written := write_per_class(per_class, out))
        sections.per_class = written["per_class.md"].read_text(encoding="utf-8")
        sections.tables["per_class"] = per_class
    if old is not None:
        files.update(written := write_baseline(compare_sweeps(df, old), out, ", ".join(map(str, dirs)),
                                               ", ".join(map(str, baseline))))
        sections.baseline = written["baseline.md"].read_text(encoding="utf-8")
    sections.job_figures = job_figures(df, out)

    if attention_fn is not None:
        try:
            for path in attention_fn(out):
                files[Path(path).name] = Path(path)
        except Exception as exc:  # a drawing hook must not cost the user the rest of the report
            sections.notes.append(f"attention maps not drawn: {type(exc).__name__}: {exc}")
            warnings.warn(sections.notes[-1], stacklevel=2)

    if wandb:
        files.update(_wandb(wandb, df, dirs, table, summary, figures, out, sections, log_wandb))

    index = render_index(title=title, command=command, dirs=dirs, df=df, table=table, files=files, out=out,
                         sections=sections, summary=summary)
    atomic.write_text(out / "index.md", index)
    return out


def _convergence(summary: pd.DataFrame, curves: pd.DataFrame, out: Path, sections: Sections) -> dict[str, Path]:
    reference = reference_variant(summary)
    conv = convergence_table(curves, reference, order=list(summary.index)) if reference else None
    if conv is None or len(conv) <= 1:
        return {}
    conv["sign_final_step"] = settle_variants(curves, reference, list(conv.index), conv.attrs["metric"])
    conv.index = conv.index.map(lambda v: summary["label"].get(v, v))
    conv.attrs["reference"] = summary["label"].get(reference, reference)
    written = write_convergence(conv, out)
    sections.convergence = written["convergence.md"].read_text(encoding="utf-8")
    settled = conv["sign_final_step"].dropna()
    if len(settled):
        sections.settle.append(f"Convergence: every variant's sign against {conv.attrs['reference']} was final "
                               f"from step {int(settled.max())}.")
    return written


def _orderings(df: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, out: Path,
               sections: Sections) -> dict[str, Path]:
    orderings = ordering_table(df, summary)
    if orderings is None:
        return {}
    settled = settle_orderings(orderings, curves, orderings.attrs["metric"], orderings.attrs["alpha"])
    settled.attrs.update(orderings.attrs)
    written = write_orderings(settled, out)
    sections.orderings = written["orderings.md"].read_text(encoding="utf-8")
    sections.orderings_summary = summary_lines(settled)
    sections.tables["orderings"] = settled
    sections.settle.insert(0, "Orderings: " + settle_line(settled))
    return written


def _wandb(entity_project: str, df: pd.DataFrame, dirs: list[Path], table: pd.DataFrame, summary: pd.DataFrame,
           figures: dict[str, Path], out: Path, sections: Sections, log: bool) -> dict[str, Path]:
    files = {}
    group = _wandb_group(df, dirs)
    try:
        runs = gather_wandb(entity_project, group=group)
        files["wandb_runs.csv"] = atomic.write_text(out / "wandb_runs.csv", runs.to_csv(index=False))
        sections.notes.append(f"W&B runs of `{entity_project}` group `{group}`: {len(runs)} (listed, not merged "
                              "into the table)")
    except RuntimeError as exc:
        sections.notes.append(f"W&B runs not gathered: {exc}")
    if log:
        sections.notes.append(_log_to_wandb(entity_project, group, table, summary, figures, out, sections.tables,
                                            list(df["job"])))
    return files


def _wandb_group(df: pd.DataFrame, dirs: list[Path]) -> str:
    # The engine names the W&B group after the sweep; result.json may record it, else use the sweep folder name.
    groups = df["wandb_group"].dropna()
    return str(groups.iloc[0]) if len(groups) else dirs[0].resolve().name


def _log_to_wandb(entity_project: str, group: str, table: pd.DataFrame, summary: pd.DataFrame,
                  figures: dict[str, Path], out: Path, tables: dict[str, pd.DataFrame], jobs: list[str]) -> str:
    from ablate.report.wandb_report import log_report, wandb_mode

    try:
        run_dir = log_report(entity_project, group, table, summary, figures, out, tables=tables, job_dirs=jobs)
    except Exception as exc:  # W&B trouble (service start, auth) must not lose the files already written
        return f"report not logged to W&B: {type(exc).__name__}: {exc}"
    if run_dir is None:
        return "report not logged to W&B (disabled or not installed)"
    return f"report logged to W&B ({wandb_mode()}, job_type `report`, group `{group}`): `{run_dir}`"
