"""How much faster a variant converges than DETR: steps to reach DETR's final AP50, as a ratio over seed pairs.

X = the DETR variant's final AP50, averaged over its seeds. For every seed of every variant, the first eval step
with AP50 >= X ("not reached" if none). Speed-up = DETR's steps / the variant's steps, over pairs of seeds
(matched by seed number when the variants share seeds, else all pairs); pairs where either side never reached X
are counted apart, not averaged in.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.report import atomic
from ablate.report.tables import to_markdown

NOT_REACHED = "not reached"


def reference_variant(summary: pd.DataFrame) -> str | None:
    """The first plain-DETR variant of a summary (csq == "detr"), or None."""
    if "csq" not in summary:
        return None
    detr = summary.index[summary["csq"].astype(str) == "detr"]
    return str(detr[0]) if len(detr) else None


def final_values(curves: pd.DataFrame, metric: str = "AP50") -> pd.DataFrame:
    """Last eval value of `metric` per counted job: variant, job, seed, step, value."""
    evals = _evals(curves, metric)
    last = evals.sort_values("step").groupby("job", sort=False).tail(1)
    return last.rename(columns={metric: "value"})[["variant", "job", "seed", "step", "value"]]


def steps_to_reach(curves: pd.DataFrame, threshold: float, metric: str = "AP50") -> pd.DataFrame:
    """Per counted job: first eval step with `metric` >= threshold (NaN if never), and its last eval step."""
    rows = []
    for job, group in _evals(curves, metric).groupby("job", sort=False):
        group = group.sort_values("step")
        hit = group.loc[group[metric].astype(float) >= threshold, "step"]
        rows.append({"variant": group["variant"].iloc[0], "job": job, "seed": group["seed"].iloc[0],
                     "step": float(hit.iloc[0]) if len(hit) else math.nan,
                     "last_step": float(group["step"].iloc[-1])})
    return pd.DataFrame(rows, columns=["variant", "job", "seed", "step", "last_step"])


def speedup(steps: pd.DataFrame, reference: str, variant: str) -> dict[str, float]:
    """Reference steps / variant steps over seed pairs: mean, std, min, max, n_pairs, n_unreached."""
    ref = steps[steps["variant"] == reference]
    var = steps[steps["variant"] == variant]
    common = sorted(set(ref["seed"].dropna()) & set(var["seed"].dropna()))
    if common:
        pairs = [(ref.loc[ref["seed"] == s, "step"].iloc[0], var.loc[var["seed"] == s, "step"].iloc[0])
                 for s in common]
    else:
        pairs = list(itertools.product(ref["step"], var["step"]))
    ratios = pd.Series([r / v for r, v in pairs if not (pd.isna(r) or pd.isna(v)) and v > 0], dtype=float)
    return {"ratio_mean": ratios.mean() if len(ratios) else math.nan,
            "ratio_std": ratios.std(ddof=1) if len(ratios) > 1 else math.nan,
            "ratio_min": ratios.min() if len(ratios) else math.nan,
            "ratio_max": ratios.max() if len(ratios) else math.nan,
            "n_pairs": len(ratios), "n_unreached": len(pairs) - len(ratios)}


def convergence_table(curves: pd.DataFrame, reference: str, *, metric: str = "AP50", early: float = 0.05,
                      within: float | list[float] | None = None,
                      order: list[str] | None = None) -> pd.DataFrame | None:
    """One row per variant with eval curves; None when the reference has none.

    `within` is the budget (or budgets) of the early-progress columns: the fraction of seeds whose `metric`
    reached `early` by then ("leaves the plateau"). Default: up to 6 eval steps of the shortest counted run,
    evenly spaced, ending at its last. `early_fraction` is the fraction at the last budget, and
    `early_fraction@S` the one by step S. The threshold X and the budgets are in attrs.
    """
    finals = final_values(curves, metric)
    if reference not in set(finals["variant"]):
        return None
    threshold = float(finals.loc[finals["variant"] == reference, "value"].mean())
    steps = steps_to_reach(curves, threshold, metric)
    budgets = _budgets(curves, metric, float(steps["last_step"].min())) if within is None else (
        [float(w) for w in within] if isinstance(within, list | tuple) else [float(within)])
    early_steps = steps_to_reach(curves, early, metric)
    variants = [v for v in (order or []) if v in set(steps["variant"])]
    variants += [v for v in dict.fromkeys(steps["variant"]) if v not in variants]
    rows = []
    for v in variants:
        mine = steps[steps["variant"] == v]
        reached = mine["step"].dropna()
        early_mine = early_steps[early_steps["variant"] == v]
        row: dict[str, Any] = {
            "variant": v, "seeds": len(mine),
            f"final_{metric}_mean": 100 * finals.loc[finals["variant"] == v, "value"].mean(),
            "n_reached": len(reached),
            "steps_mean": reached.mean() if len(reached) else math.nan,
            "steps_std": reached.std(ddof=1) if len(reached) > 1 else math.nan,
            "steps_per_seed": ", ".join(
                f"s{_seed(s)}: {NOT_REACHED if pd.isna(t) else int(t)}" for s, t in zip(mine["seed"], mine["step"])),
            **speedup(steps, reference, v),
            **{f"early_fraction@{b:g}": float((early_mine["step"] <= b).mean()) if len(early_mine) else math.nan
               for b in budgets},
        }
        row["early_fraction"] = row[f"early_fraction@{budgets[-1]:g}"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("variant")
    table.attrs.update(reference=reference, metric=metric, threshold=threshold, early=early, within=budgets)
    return table


def format_convergence(table: pd.DataFrame) -> pd.DataFrame:
    """Printable version: steps as mean ± std with per-seed values, speed-up as mean ± std [min–max]."""
    metric, ref = table.attrs["metric"], table.attrs["reference"]
    early, within = table.attrs["early"], table.attrs["within"]
    out = pd.DataFrame(index=table.index)
    out["seeds"] = table["seeds"]
    out[f"final {metric} (%)"] = table[f"final_{metric}_mean"].map(lambda v: f"{v:.1f}")
    out["reached X"] = [f"{r}/{n}" for r, n in zip(table["n_reached"], table["seeds"])]
    out["steps to X"] = [
        NOT_REACHED if pd.isna(m) else (f"{m:.0f}" if pd.isna(s) else f"{m:.0f} ± {s:.0f}") + f" ({per})"
        for m, s, per in zip(table["steps_mean"], table["steps_std"], table["steps_per_seed"])]
    out[f"speed-up vs {ref}"] = [_ratio(table.loc[v], v == ref) for v in table.index]
    if "sign_final_step" in table:  # settle.settle_variants: how short a sweep would have told the same
        out[f"sign vs {ref} final from step"] = table["sign_final_step"].map(
            lambda s: "—" if pd.isna(s) else f"{s:.0f}")
    for b in within:
        out[f"{metric} ≥ {100 * early:g}% by step {b:g}"] = table[f"early_fraction@{b:g}"].map(
            lambda f: "—" if pd.isna(f) else f"{100 * f:.0f}%")
    return out


def write_convergence(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write convergence.md (with a line saying what X is) and convergence.csv into `out`."""
    a = table.attrs
    header = (f"X = final {a['metric']} of `{a['reference']}` (mean over its seeds) = {100 * a['threshold']:.1f}%. "
              f"Steps to X = first eval step with {a['metric']} ≥ X. Speed-up = steps of `{a['reference']}` ÷ "
              "steps of the variant, over seed pairs (same seed where shared, else all pairs); pairs where "
              f"either never reached X are left out and counted. Last columns: fraction of seeds with "
              f"{a['metric']} ≥ {100 * a['early']:g}% by each step (leaving the plateau). `sign … final from "
              f"step`: the earliest eval step from which the sign of the variant's mean {a['metric']} minus "
              f"`{a['reference']}`'s stays the final one.\n\n")
    md = header + to_markdown(format_convergence(table), left=("steps to X",)) + "\n"
    csv = table.assign(threshold=a["threshold"], within=a["within"][-1]).to_csv(float_format="%.4g")
    return {"convergence.md": atomic.write_text(Path(out) / "convergence.md", md),
            "convergence.csv": atomic.write_text(Path(out) / "convergence.csv", csv)}


def _budgets(curves: pd.DataFrame, metric: str, last: float, most: int = 6) -> list[float]:
    """Up to `most` eval steps ≤ `last`, evenly spaced and ending at `last`."""
    steps = sorted(s for s in _evals(curves, metric)["step"].unique() if s <= last) or [last]
    stride = math.ceil(len(steps) / most)
    return [float(s) for s in steps[::-1][::stride][::-1]]


def _evals(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    if curves.empty or metric not in curves:
        return pd.DataFrame(columns=["variant", "job", "seed", "step", metric])
    evals = curves[(curves["kind"] == "eval") & curves["counted"].astype(bool)]
    return evals.dropna(subset=[metric])


def _ratio(row: pd.Series, is_reference: bool) -> str:
    if is_reference:
        return "1 (reference)"
    if row["n_pairs"] == 0:
        return f"— ({NOT_REACHED})"
    text = f"{row['ratio_mean']:.2f}×"
    if row["n_pairs"] > 1:
        text += f" ± {row['ratio_std']:.2f} [{row['ratio_min']:.2f}–{row['ratio_max']:.2f}]"
    text += f", {row['n_pairs']} pair{'s' if row['n_pairs'] != 1 else ''}"
    if row["n_unreached"]:
        text += f", {row['n_unreached']} {NOT_REACHED}"
    return text


def _seed(seed: Any) -> str:
    return "?" if pd.isna(seed) else str(int(seed)) if float(seed).is_integer() else str(seed)
