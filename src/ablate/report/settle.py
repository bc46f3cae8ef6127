"""How short could the sweep have been? The earliest evaluation step from which a conclusion stays the final one.

From every counted job's eval lines (metrics.jsonl): at each eval step the same tests as the final table, on the
values at that step; a pair's sign (and its Holm verdict) is *settled* at the earliest step from which it no longer
changes up to the last common step.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.report.orderings import DECIDED, compare_pairs, per_seed


def settled_step(values: pd.Series) -> float:
    """Earliest index (step) of `values` (sorted by step) from which every value equals the last; NaN if empty."""
    values = values.dropna()
    if values.empty:
        return math.nan
    same = (values == values.iloc[-1]).to_numpy()
    changed = np.flatnonzero(~same)
    return float(values.index[changed[-1] + 1] if len(changed) else values.index[0])


def eval_steps(curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Counted eval lines with `metric`: variant, job, seed, step, metric."""
    if curves.empty or metric not in curves:
        return pd.DataFrame(columns=["variant", "job", "seed", "step", metric])
    evals = curves[(curves["kind"] == "eval") & curves["counted"].astype(bool)].dropna(subset=[metric])
    return evals[["variant", "job", "seed", "step", metric]]


def settle_orderings(table: pd.DataFrame, curves: pd.DataFrame, metric: str = "AP",
                     alpha: float = 0.05) -> pd.DataFrame:
    """`table` (orderings.ordering_table) with `sign_final_step`, `verdict_final_step` and `last_step` added."""
    evals = eval_steps(curves, metric)
    pairs = list(zip(table["paper_higher"], table["paper_lower"], table["paper_delta"]))
    steps = sorted(evals["step"].unique())
    deltas, verdicts = {}, {}
    for step in steps:
        at = evals[evals["step"] == step]
        values = {v: per_seed(at[at["variant"] == v], metric) for v in {*table["paper_higher"], *table["paper_lower"]}}
        rows = compare_pairs(values, pairs, alpha)
        deltas[step], verdicts[step] = np.sign(rows["delta"]).tolist(), rows["verdict"].tolist()
    out = table.copy()
    sign_steps, verdict_steps, last_steps = [], [], []
    for i in range(len(table)):
        sign = pd.Series({s: deltas[s][i] for s in steps}, dtype=float).dropna()
        said = pd.Series({s: verdicts[s][i] for s in steps if not math.isnan(deltas[s][i])}, dtype=object)
        last_steps.append(float(sign.index[-1]) if len(sign) else math.nan)
        sign_steps.append(settled_step(sign))
        verdict_steps.append(settled_step(said) if len(said) and said.iloc[-1] in DECIDED else math.nan)
    out["sign_final_step"], out["verdict_final_step"], out["last_step"] = sign_steps, verdict_steps, last_steps
    return out


def settle_variants(curves: pd.DataFrame, reference: str, variants: list[str], metric: str = "AP50") -> pd.Series:
    """Per variant: the earliest eval step from which the sign of (its mean − the reference's mean) stays final."""
    evals = eval_steps(curves, metric)
    means = evals.groupby(["variant", "step"])[metric].mean().unstack("variant")
    out = {}
    for v in variants:
        if v == reference or v not in means or reference not in means:
            out[v] = math.nan
            continue
        out[v] = settled_step(np.sign(means[v] - means[reference]).dropna())
    return pd.Series(out, dtype=float)


def settle_line(table: pd.DataFrame) -> str:
    """One line for index.md: from which step the orderings' signs and decided verdicts were already final."""
    last = table["last_step"].max()
    if pd.isna(last):
        return "no evaluation curves to tell."
    decided = table[table["verdict"].isin(DECIDED)]
    settled = table["sign_final_step"].dropna().astype(int).value_counts().sort_index()  # orderings per step
    if settled.empty:
        line = f"signs are not settled by step {int(last)}"
    elif settled.index[-1] < last:
        line = f"every ordering's sign was final from step {settled.index[-1]} of {int(last)}"
        if len(settled) > 1:  # the last pair to settle hides how early most did
            line += _per_step(settled, len(table))
    else:  # a sign that flips up to the last evaluation: the budget did not settle it, and the reader is told so
        line = (f"{settled.iloc[-1]} of {len(table)} orderings still changed sign up to the last evaluation "
                f"(step {int(last)}): this budget did not settle them")
        if len(settled) > 1:
            line += _per_step(settled.iloc[:-1], len(table))
    if len(decided):
        steps = decided["verdict_final_step"]
        noun = "verdict" if len(decided) == 1 else "verdicts"
        line += (f"; the {len(decided)} decided Holm {noun} from step {int(steps.max())}" if steps.notna().all()
                 else "; the eval curves' last step does not decide every verdict the final metrics decide")
    else:
        line += "; no verdict is decided"
    return line + "."


def _per_step(settled: pd.Series, total: int) -> str:
    return " (" + ", ".join(f"{n} of {total} final from step {step}" for step, n in settled.items()) + ")"
