"""index.md: the report's front page, linking every file it wrote."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ablate.report.tables import caption, to_markdown

FIGURE_CAPTIONS = {
    "ap_bars.png": "AP per variant: this sweep, and the paper's values in their own panel",
    "convergence.png": "AP and AP50 vs step",
    "loss.png": "Training loss vs step",
}
STATUS_ORDER = ("finished", "duplicate", "failed", "running", "missing", "unreadable")


@dataclass
class Sections:
    """The optional parts of index.md, as markdown (empty when the report has no such part)."""

    orderings: str = ""
    orderings_summary: list[str] = field(default_factory=list)
    convergence: str = ""
    settle: list[str] = field(default_factory=list)  # how short could the sweep be, one line per table
    per_class: str = ""
    baseline: str = ""
    job_figures: list[tuple[str, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # also logged to W&B (per_class, orderings)


def render_index(*, title: str, command: str, dirs: Iterable[Path], df: pd.DataFrame, table: pd.DataFrame,
                 files: Mapping[str, Path], out: Path, sections: Sections | None = None,
                 summary: pd.DataFrame | None = None) -> str:
    """Markdown for index.md; `files` maps names written into `out` to their paths (all get a link)."""
    s = sections or Sections()
    counts = df["status"].value_counts()
    ordered = [st for st in STATUS_ORDER if st in counts] + [st for st in counts.index if st not in STATUS_ORDER]
    lines = [
        f"# {title}", "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- Sweep folders: " + ", ".join(f"`{d}`" for d in dirs),
        f"- Jobs: {len(df)} (" + ", ".join(f"{counts[st]} {st}" for st in ordered) + ")",
        "", "## Table", "",
        (caption(summary) + " " if summary is not None else "")
        + "`seeds`: models counted (a duplicate job counts once). `paper AP`: the paper's value for the same "
        "variant (COCO val, ResNet-50, 50 epochs), a different scale from a small run; compare orderings, not values.",
        "", to_markdown(table), "",
        "Files: " + _links(files, out, lambda n: n.startswith(("table.", "jobs."))),
    ]
    if s.settle:
        lines += ["", "## How short could this sweep be", "", *[f"- {line}" for line in s.settle]]
    if s.orderings:
        lines += ["", "## The paper's orderings here", "", *s.orderings_summary, "", s.orderings.strip(), "",
                  "Files: " + _links(files, out, lambda n: n.startswith("orderings."))]
    lines += _figures(files, out)
    for heading, text, prefix in (("Convergence", s.convergence, "convergence."), ("Per class", s.per_class,
                                  "per_class."), ("Against the baseline", s.baseline, "baseline.")):
        if text:
            lines += ["", f"## {heading}", "", text.strip(), "",
                      "Files: " + _links(files, out, lambda n, p=prefix: n.startswith(p) and not n.endswith(".png"))]
    lines += _attention(files, out, s.job_figures)
    known = ("table.", "jobs.", "convergence.", "orderings.", "per_class.", "baseline.")
    others = [n for n in files if not n.endswith(".png") and not n.startswith(known)]
    if others:
        lines += ["", "## Other files", ""] + [f"- {_link(n, files, out)}" for n in others]
    lines += _problems(df, out)
    if s.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in s.notes]
    return "\n".join(lines) + "\n"


def _figures(files: Mapping[str, Path], out: Path) -> list[str]:
    figures = [n for n in files if n.endswith(".png") and n in FIGURE_CAPTIONS]
    if not figures:
        return []
    return ["", "## Figures", ""] + [f"![{FIGURE_CAPTIONS[n]}]({_rel(files[n], out)})\n\n{_link(n, files, out)}\n"
                                     for n in figures]


def _attention(files: Mapping[str, Path], out: Path, job_figures: list[tuple[str, Path]]) -> list[str]:
    drawn = [n for n in files if n.endswith(".png") and n not in FIGURE_CAPTIONS]
    if not drawn and not job_figures:
        return []
    lines = ["", "## Attention maps", ""] + [f"![{n}]({_rel(files[n], out)})\n" for n in drawn]
    return lines + [f"![{caption_}]({_rel(png, out)})\n\n{caption_}\n" for caption_, png in job_figures]


def _problems(df: pd.DataFrame, out: Path) -> list[str]:
    problems = df[~df["status"].isin(["finished"]) | ~df["counted"].astype(bool)]
    if not len(problems):
        return []
    lines = ["", "## Jobs not counted or not finished", "",
             "| job | variant | seed | status | note |", "|---|---|---|---|---|"]
    for row in problems.itertuples(index=False):
        lines.append(f"| `{_rel(Path(row.job), out)}` | {row.variant} | {_cell(row.seed)} | {row.status} | "
                     f"{_cell(_problem(row))} |")
    return lines


def _links(files: Mapping[str, Path], out: Path, keep) -> str:
    return " · ".join(_link(n, files, out) for n in files if keep(n))


def _problem(row) -> str:
    if row.status == "duplicate":
        return f"same model as {row.duplicate_of}" + ("" if row.counted else " (counted there)")
    if row.status == "finished":
        if pd.isna(row.AP):
            return "no final metrics"
        return f"same config and seed as {row.kept}: that job's metrics are kept, these (AP {row.AP:.4f}) left out"
    text = row.error if isinstance(row.error, str) else ""
    if isinstance(row.error_type, str):
        text = f"{row.error_type}: {text}"
    if not pd.isna(row.error_step):
        text += f" (step {int(row.error_step)})"
    return text


def _link(name: str, files: Mapping[str, Path], out: Path) -> str:
    return f"[{name}]({_rel(files[name], out)})"


def _rel(path: Path, out: Path) -> str:
    try:
        return Path(os.path.relpath(path, out)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("|", "\\|").replace("\n", " ")
