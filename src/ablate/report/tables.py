"""The ablation table: one row per variant, mean ± std over seeds, the paper's AP, and what went wrong."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.report import atomic
from ablate.report.gather import METRICS, axis_columns, format_value, varying_axes
from ablate.report.labels import constant_axes, variant_labels
from ablate.report.paper import paper_row
from ablate.report.stats import LEVEL, mean_interval

# The paper's own column orders (Table 3, Fig. 5, §4.3); values not listed sort after these, alphabetically.
AXIS_ORDER: dict[str, tuple[Any, ...]] = {
    "csq": ("detr", "detr_content", "C", "T", "P", "I", "full"),
    "proj": ("n/a", "identity", "scalar", "block", "full", "diagonal"),
    "ref": ("n/a", "zero", "learned", "query"),
    "focal": ("false", "true"),
    "offset": ("false", "true"),
}
# Statuses other than a counted finished run, as they read in the `status` column.
_NOTES = {
    "failed": "{n} failed",
    "duplicate": "{n} duplicate (counted once)",
    "missing": "{n} missing",
    "running": "{n} running or killed",
    "unreadable": "{n} unreadable result.json",
}
DASH = "—"
CI_COLUMN = "AP 95% CI"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers per variant (index `variant`), in table order.

    Columns: `label` (the readable name), the axes, `seeds` (models counted), `jobs`, `<metric>_mean` /
    `<metric>_std` in percent (std over seeds, ddof 1; NaN for one seed), `<metric>_ci_low` / `_ci_high` (95% t
    interval of the mean), `paper_AP`, `paper_source`, `n_<status>` counts and the `status` note. attrs["constant"]:
    labels of the axes every row shares (said once in captions).
    """
    axes = axis_columns(df)
    labels = variant_labels(df)
    rows = []
    for key, group in df.groupby("variant_key", sort=False, dropna=False):
        rep = group.iloc[int(group[axes].notna().sum(axis=1).argmax())] if axes else group.iloc[0]
        counted = group[group["counted"].astype(bool)]
        row: dict[str, Any] = {"variant": rep["variant"], "label": labels.get(rep["variant"], rep["variant"]),
                               "variant_key": key}
        row.update({a: rep[a] for a in axes})
        row["seeds"] = len(counted)
        row["jobs"] = len(group)
        for metric in METRICS:
            values = counted[metric].astype(float) * 100
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = mean_interval(values)
        known = {a: rep[a] for a in axes if not pd.isna(rep[a])}
        paper = paper_row(known) if known else None  # no axes at all: nothing to compare with
        row["paper_AP"] = paper.ap if paper else math.nan
        row["paper_source"] = paper.source if paper else ""
        for status, count in group["status"].value_counts().items():
            row[f"n_{status}"] = int(count)
        row["status"] = _status_note(group)
        rows.append(row)
    summary = pd.DataFrame(rows)
    count_cols = [c for c in summary.columns if c.startswith("n_")]
    summary[count_cols] = summary[count_cols].fillna(0).astype(int)
    summary = summary.iloc[_table_order(summary, varying_axes(df) or axes)].set_index("variant")
    summary.attrs["constant"] = constant_axes(df)
    return summary


def format_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The table as printed (index: `variant`): `mean ± std` in percent with one decimal, the 95% interval of the
    AP mean beside it, `seeds`, `paper AP`, `status`."""
    out = pd.DataFrame(index=summary.index)
    for metric in METRICS:
        out[metric] = [
            _mean_std(m, s, n) for m, s, n in
            zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], summary["seeds"])
        ]
        if metric == "AP":
            out[CI_COLUMN] = [DASH if pd.isna(lo) else f"[{_one_decimal(lo)}, {_one_decimal(hi)}]"
                              for lo, hi in zip(summary["AP_ci_low"], summary["AP_ci_high"])]
    out["seeds"] = summary["seeds"].astype(int)
    out["paper AP"] = [DASH if pd.isna(v) else f"{v:.1f}" for v in summary["paper_AP"]]
    out["status"] = summary["status"]
    return out


def write_tables(summary: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write table.md (caption, then the table), table.csv (numbers: mean, std and interval columns apart) and
    table.tex into `out`. Rows are named by their readable labels."""
    out = Path(out)
    table = display_table(summary)
    files = {
        "table.md": atomic.write_text(out / "table.md", caption(summary) + "\n\n" + to_markdown(table) + "\n"),
        "table.csv": atomic.write_text(out / "table.csv", summary.to_csv(float_format="%.4g")),
        "table.tex": atomic.write_text(out / "table.tex", to_latex(table, summary)),
    }
    return files


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """format_table with each row named by its readable label (index `variant`)."""
    table = format_table(summary)
    if "label" in summary:
        table.index = pd.Index(summary["label"].tolist(), name="variant")
    return table


def caption(summary: pd.DataFrame) -> str:
    """What every row shares and what the numbers are, said once."""
    constant = summary.attrs.get("constant") or []
    text = (f"COCO-style AP in percent, mean ± std over seeds; {CI_COLUMN}: {LEVEL:.0%} t interval of the AP "
            "mean.")
    return text + (" All rows: " + ", ".join(constant) + "." if constant else "")


def to_markdown(table: pd.DataFrame, left: tuple[str, ...] = ("status",)) -> str:
    """GitHub-flavoured markdown of a formatted table: text columns (index, `left`) left, the rest right."""
    align = ["left"] + ["left" if c in left else "right" for c in table.columns]
    # disable_numparse: keep "34.0" as printed instead of tabulate re-formatting it to "34"
    return table.to_markdown(tablefmt="github", colalign=align, disable_numparse=True)


def to_latex(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    """LaTeX tabular (booktabs rules) of a formatted table, the best AP mean in bold."""
    metric_cols = list(METRICS)
    tex = table.copy()
    for col in [*metric_cols, CI_COLUMN, "paper AP"]:
        tex[col] = tex[col].str.replace(" ± ", r" \textpm{} ", regex=False).str.replace(DASH, "--", regex=False)
    best = summary["AP_mean"].max()
    is_best = (summary["AP_mean"] == best).to_numpy() if not pd.isna(best) else [False] * len(summary)

    def bold_best(frame: pd.DataFrame) -> pd.DataFrame:
        styles = pd.DataFrame("", index=frame.index, columns=frame.columns)  # CSS per cell; bold -> \\bfseries
        styles.loc[is_best, "AP"] = "font-weight: bold;"
        return styles

    tex = tex.reset_index()  # the variant as a named column, not an index with its own header row
    styler = tex.style.apply(bold_best, axis=None).hide(axis="index")
    styler = styler.format(escape="latex", subset=["variant", "status"]).format_index(escape="latex", axis=1)
    return styler.to_latex(
        hrules=True, convert_css=True, column_format="l" + "r" * (len(tex.columns) - 2) + "l",
        caption=_latex_escape("Ablation results. " + caption(summary)).replace("±", r"\textpm{}"),
        label="tab:ablation",
    )


def _mean_std(mean: float, std: float, n: int) -> str:
    if n == 0 or pd.isna(mean):
        return DASH
    if n == 1 or pd.isna(std):
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.1f}"


def _one_decimal(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text  # -0.04 rounds to 0.0, not to a signed zero


def _status_note(group: pd.DataFrame) -> str:
    notes = []
    for status, template in _NOTES.items():
        n = int((group["status"] == status).sum())
        if n:
            notes.append(template.format(n=n))
    finished_uncounted = group[(group["status"] == "finished") & ~group["counted"].astype(bool)]
    if len(finished_uncounted):
        no_metrics = int(finished_uncounted["AP"].isna().sum())
        repeats = len(finished_uncounted) - no_metrics
        if no_metrics:
            notes.append(f"{no_metrics} finished without metrics")
        if repeats:
            notes.append(f"{repeats} repeated seed (counted once)")
    other = sorted(set(group["status"]) - set(_NOTES) - {"finished"})
    notes += [f"{int((group['status'] == s).sum())} {s}" for s in other]
    return ", ".join(notes) if notes else "ok"


def _table_order(summary: pd.DataFrame, axes: list[str]) -> list[int]:
    def key(i: int) -> tuple:
        parts = []
        for axis in axes:
            text = format_value(summary.iloc[i][axis])
            known = AXIS_ORDER.get(axis, ())
            if text in known:
                parts.append((0, known.index(text), 0.0, ""))
            else:
                try:
                    parts.append((1, 0, float(text), ""))
                except ValueError:
                    parts.append((2, 0, 0.0, text))
        return tuple(parts)

    return sorted(range(len(summary)), key=key)


def _latex_escape(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "%": r"\%", "_": r"\_", "&": r"\&", "#": r"\#", "$": r"\$", "{": r"\{",
               "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return re.sub(r"[\\%_&#${}~^]", lambda m: special[m.group()], text)
