"""index.md: the report's front page, linking every file it wrote."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ablate.report.tables import to_markdown

FIGURE_CAPTIONS = {
    "ap_bars.png": "AP per variant (bars: this sweep; diamonds: the paper, on its own scale)",
    "convergence.png": "AP and AP50 vs step",
    "loss.png": "Training loss vs step",
}
STATUS_ORDER = ("finished", "duplicate", "failed", "running", "missing", "unreadable")


def render_index(*, title: str, command: str, dirs: Iterable[Path], df: pd.DataFrame, table: pd.DataFrame,
                 files: Mapping[str, Path], out: Path, convergence_md: str | None = None,
                 orderings_md: str | None = None, notes: Iterable[str] = ()) -> str:
    """Markdown for index.md; `files` maps names written into `out` to their paths (all get a link)."""
    counts = df["status"].value_counts()
    ordered = [s for s in STATUS_ORDER if s in counts] + [s for s in counts.index if s not in STATUS_ORDER]
    lines = [
        f"# {title}", "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- Sweep folders: " + ", ".join(f"`{d}`" for d in dirs),
        f"- Jobs: {len(df)} (" + ", ".join(f"{counts[s]} {s}" for s in ordered) + ")",
        "", "## Table", "",
        "COCO-style AP in percent: mean ± std over seeds (sample std; only the mean for one seed). "
        "`seeds`: models counted (a duplicate job counts once). `paper AP`: the paper's value for the same "
        "variant (COCO val, ResNet-50, 50 epochs), a different scale from a small run; compare orderings, not values.",
        "", to_markdown(table), "",
        "Files: " + " · ".join(_link(n, files, out) for n in files if n.startswith(("table.", "jobs."))),
    ]
    if orderings_md:
        lines += ["", "## The paper's orderings here", "", orderings_md.strip(), "",
                  "Files: " + " · ".join(_link(n, files, out) for n in files if n.startswith("orderings."))]
    figures = [n for n in files if n.endswith(".png") and n in FIGURE_CAPTIONS]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{FIGURE_CAPTIONS[n]}]({_rel(files[n], out)})\n\n{_link(n, files, out)}\n" for n in figures]
    if convergence_md:
        lines += ["", "## Convergence", "", convergence_md.strip(), "",
                  "Files: " + " · ".join(_link(n, files, out) for n in files
                                        if n.startswith("convergence.") and not n.endswith(".png"))]
    attention = [n for n in files if n.endswith(".png") and n not in FIGURE_CAPTIONS]
    if attention:
        lines += ["", "## Attention maps", ""] + [f"![{n}]({_rel(files[n], out)})\n" for n in attention]
    others = [n for n in files if not n.endswith(".png") and not n.startswith(("table.", "jobs.", "convergence.", "orderings."))]
    if others:
        lines += ["", "## Other files", ""] + [f"- {_link(n, files, out)}" for n in others]
    problems = df[~df["status"].isin(["finished"]) | ~df["counted"].astype(bool)]
    if len(problems):
        lines += ["", "## Jobs not counted or not finished", "",
                  "| job | variant | seed | status | note |", "|---|---|---|---|---|"]
        for row in problems.itertuples(index=False):
            lines.append(f"| `{_rel(Path(row.job), out)}` | {row.variant} | {_cell(row.seed)} | {row.status} | "
                         f"{_cell(_problem(row))} |")
    notes = list(notes)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _problem(row) -> str:
    if row.status == "duplicate":
        return f"same model as {row.duplicate_of}" + ("" if row.counted else " (counted there)")
    if row.status == "finished":
        return "no final metrics" if pd.isna(row.AP) else "same config and seed as another job (counted once)"
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
