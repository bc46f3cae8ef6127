"""Per-class AP (result.json `per_class`: COCO evaluation per category, fractions, null where undefined): one row
per class, one column per variant, so a variant that helps one class and hurts another shows."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ablate.report import atomic
from ablate.report.tables import DASH, to_markdown

PER_CLASS_METRICS = ("AP", "AP50")


def per_class_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long frame of counted jobs' per-class values in percent: variant, seed, id, name, AP, AP50."""
    rows = []
    counted = df[df["counted"].astype(bool)] if "per_class" in df else df.iloc[0:0]
    for job in counted.itertuples(index=False):
        for entry in job.per_class if isinstance(job.per_class, list) else []:
            rows.append({"variant": job.variant, "seed": job.seed, "id": entry.get("id"),
                         "name": str(entry.get("name", entry.get("id"))),
                         **{m: _percent(entry.get(m)) for m in PER_CLASS_METRICS}})
    return pd.DataFrame(rows, columns=["variant", "seed", "id", "name", *PER_CLASS_METRICS])


def per_class_table(df: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame | None:
    """Mean, std and count over seeds per (variant, class), variants in table order; None without per-class data."""
    long = per_class_frame(df)
    if long.empty:
        return None
    grouped = long.groupby(["variant", "id", "name"], sort=False)
    table = grouped[list(PER_CLASS_METRICS)].agg(["mean", "std", "count"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table = table.reset_index()
    order = {v: i for i, v in enumerate(summary.index)}
    table["label"] = table["variant"].map(summary["label"]) if "label" in summary else table["variant"]
    table = table.sort_values(["id", "variant"], key=lambda s: s.map(order) if s.name == "variant" else s)
    return table.reset_index(drop=True)


def format_per_class(table: pd.DataFrame, metric: str = "AP") -> pd.DataFrame:
    """Classes as rows, variants as columns: `mean ± std (n)` of `metric` in percent."""
    cells = table.assign(cell=[_cell(m, s, n) for m, s, n in
                               zip(table[f"{metric}_mean"], table[f"{metric}_std"], table[f"{metric}_count"])])
    wide = cells.pivot_table(index=["id", "name"], columns="label", values="cell", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(table["label"]))].fillna(DASH)
    wide.index = [f"{name} ({cid})" for cid, name in wide.index]
    wide.index.name = "class (id)"
    return wide


def write_per_class(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """per_class.md (AP and AP50 tables) and per_class.csv (one row per variant and class)."""
    md = ["Per-class AP of the final evaluation (COCO evaluation per category), percent, mean ± std over seeds "
          "(n = seeds with a defined value; — where COCO leaves it undefined).", ""]
    for metric in PER_CLASS_METRICS:
        md += [f"### {metric}", "", to_markdown(format_per_class(table, metric)), ""]
    return {"per_class.md": atomic.write_text(Path(out) / "per_class.md", "\n".join(md)),
            "per_class.csv": atomic.write_text(Path(out) / "per_class.csv",
                                               table.to_csv(index=False, float_format="%.4g"))}


def _percent(value) -> float:
    return 100 * float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _cell(mean: float, std: float, n: int) -> str:
    if n == 0 or pd.isna(mean):
        return DASH
    return f"{mean:.1f} ({n})" if pd.isna(std) else f"{mean:.1f} ± {std:.1f} ({n})"
