"""Which of the paper's orderings hold in a sweep, which are reversed, and which need more seeds.

For every pair of variants that both have a paper AP, the paper says which is better (or that they are on par,
|Δ| < `PAPER_TIE` AP). The pair's test is paired (scipy ttest_rel over the shared seeds) when both variants ran
the same seeds, since the seed fixes the data order and the initialisation, else Welch's t-test. Holm's step-down
correction over all pairs of the file gives `p_holm`; the ordering *holds* (or is *reversed*) when
p_holm < `alpha`, and is *inside the seed noise* otherwise.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ablate.report import atomic, stats
from ablate.report.tables import to_markdown

PAPER_TIE = 0.5  # AP points: the paper reports one run per row, so closer rows are read as "on par", not ranked
# AP points: "on par" here too only when the 95% interval of our difference lies inside ±ON_PAR (an equivalence
# reading); a non-significant difference with a wide interval is undecided, not on par. 3 points is below the
# paper's larger ranked gaps (Table 3: 0.5–4.0 AP) and above the seed noise of a 3-seed mean at laptop scale.
ON_PAR = 3.0
DECIDED = ("holds", "reversed", "paper: on par; here they differ")
COLUMN_NOTES = {
    "paper: better / worse": "the pair, the paper's higher AP first",
    "paper Δ": "the paper's AP difference (better − worse), points",
    "here Δ": "our difference of mean AP over seeds, same sign convention (positive: the paper's order)",
    "95% CI": "Welch t interval of our difference",
    "seeds": "seeds counted per variant (better / worse)",
    "test": "paired t-test when both ran the same seeds (same data order), else Welch's t-test",
    "p": "that test's two-sided p",
    "p (Holm)": "p adjusted by Holm–Bonferroni over all pairs of this file; the verdict uses it",
    "seeds needed": "seeds per variant for 80% power at α = 0.05 to detect the paper's Δ with our standard "
                    "deviations, ⌈(z₀.₉₇₅ + z₀.₈)²(s₁² + s₂²)/Δ²⌉, at least 2",
    "verdict": "holds / reversed at p (Holm) < α; inside seed noise otherwise (see seeds needed); a pair the "
               f"paper has on par: on par in both only if our 95% CI lies within ±{ON_PAR:g} AP, else undecided",
    "sign final from": "earliest eval step from which the sign of our difference stays the final one",
    "verdict from": "earliest eval step from which the final verdict (holds / reversed / differ) stays",
}


def ordering_table(df: pd.DataFrame, summary: pd.DataFrame, metric: str = "AP",
                   alpha: float = 0.05) -> pd.DataFrame | None:
    """One row per pair of variants with a paper AP (table order); None when fewer than two have one."""
    with_paper = [v for v in summary.index if not pd.isna(summary.loc[v, "paper_AP"])]
    if len(with_paper) < 2:
        return None
    counted = df[df["counted"].astype(bool) & df[metric].notna()]
    values = {v: per_seed(counted[counted["variant"] == v], metric) for v in with_paper}
    pairs = []
    for a, b in itertools.combinations(with_paper, 2):
        pa, pb = float(summary.loc[a, "paper_AP"]), float(summary.loc[b, "paper_AP"])
        pairs.append((a, b, abs(pa - pb)) if pa >= pb else (b, a, abs(pa - pb)))  # the paper's better one first
    table = compare_pairs(values, pairs, alpha)
    labels = summary["label"] if "label" in summary else pd.Series(summary.index, index=summary.index)
    table.insert(2, "label_higher", table["paper_higher"].map(labels))
    table.insert(3, "label_lower", table["paper_lower"].map(labels))
    table.attrs.update(metric=metric, alpha=alpha)
    return table


def per_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """A variant's values in percent, indexed by seed (by row position where a seed is unknown)."""
    seeds = rows["seed"] if "seed" in rows else pd.Series(math.nan, index=rows.index)
    index = [s if not pd.isna(s) else f"row{i}" for i, s in enumerate(seeds)]
    return pd.Series(rows[metric].astype(float).to_numpy() * 100, index=index)


def compare_pairs(values: Mapping[str, pd.Series], pairs: list[tuple[str, str, float]],
                  alpha: float = 0.05) -> pd.DataFrame:
    """The tests of each (better, worse, paper Δ) pair on per-seed values, Holm over all pairs, verdicts."""
    rows = []
    for hi, lo, paper_delta in pairs:
        x, y = values[hi], values[lo]
        paired = len(x) >= 2 and set(x.index) == set(y.index) and not any(str(s).startswith("row") for s in x.index)
        p_paired = stats.paired_p(x.sort_index(), y.sort_index()) if paired else math.nan
        welch = stats.welch(x, y)
        needed = (stats.seeds_needed(_std(x), _std(y), paper_delta, alpha) if paper_delta >= PAPER_TIE
                  else math.nan)
        rows.append({"paper_higher": hi, "paper_lower": lo, "paper_delta": paper_delta, **welch,
                     "n_higher": len(x), "n_lower": len(y), "p_paired": p_paired,
                     "test": "paired" if paired else "Welch",
                     "p_test": p_paired if paired else welch["p_welch"], "seeds_needed": needed})
    columns = ["paper_higher", "paper_lower", "paper_delta", "delta", "ci_low", "ci_high", "n_higher", "n_lower",
               "test", "p_welch", "p_paired", "p_test", "seeds_needed"]
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = stats.holm(table["p_test"].tolist()) if len(table) else []
    table["verdict"] = [verdict(pd_, d, p, alpha, (lo, hi)) for pd_, d, p, lo, hi in
                        zip(table["paper_delta"], table["delta"], table["p_holm"], table["ci_low"], table["ci_high"])]
    return table


# Verdicts for a pair the paper has on par whose parity we could not confirm; index.md lists both.
PAR_UNDECIDED = "paper: on par; here undecided"
PAR_UNTESTED = "paper: on par; 1 seed, untested"


def verdict(paper_delta: float, delta: float, p: float, alpha: float = 0.05,
            ci: tuple[float, float] = (math.nan, math.nan)) -> str:
    """How our Δ (paper's better − paper's worse, in AP points) relates to the paper's, at (Holm) p.

    ``ci`` is the 95% interval of our Δ: a pair the paper has on par is on par here too only inside ±ON_PAR.
    """
    if math.isnan(delta):
        return "no finished runs"
    if paper_delta < PAPER_TIE:
        if math.isnan(p):
            return PAR_UNTESTED
        if p < alpha:
            return "paper: on par; here they differ"
        return "on par in both" if -ON_PAR <= ci[0] and ci[1] <= ON_PAR else PAR_UNDECIDED
    if math.isnan(p):
        return "1 seed, untested (" + ("same sign)" if delta > 0 else "opposite sign)")
    if p >= alpha:
        return "inside seed noise"
    return "holds" if delta > 0 else "reversed"


def format_orderings(table: pd.DataFrame) -> pd.DataFrame:
    """The printed table; columns explained by COLUMN_NOTES."""
    m = table.attrs.get("metric", "AP")
    label = table["label_higher"] if "label_higher" in table else table["paper_higher"]
    out = pd.DataFrame({
        "paper: better": label,
        "paper: worse": table["label_lower"] if "label_lower" in table else table["paper_lower"],
        f"paper Δ{m}": table["paper_delta"].map(lambda v: f"{v:.1f}"),
        f"here Δ{m}": table["delta"].map(lambda v: "—" if pd.isna(v) else f"{v:+.1f}"),
        "95% CI": [_interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "seeds": [f"{a} / {b}" for a, b in zip(table["n_higher"], table["n_lower"])],
        "test": table["test"],
        "p": table["p_test"].map(_p),
        "p (Holm)": table["p_holm"].map(_p),
        "seeds needed": [_needed(n, d) for n, d in zip(table["seeds_needed"], table["paper_delta"])],
        "verdict": table["verdict"],
    })
    for col, name in (("sign_final_step", "sign final from"), ("verdict_final_step", "verdict from")):
        if col in table:
            out[name] = [_step(s, last) for s, last in zip(table[col], table["last_step"])]
    return out


def write_orderings(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """orderings.md (how to read it, the table, one line per column) and orderings.csv."""
    a = table.attrs
    counts = table["verdict"].value_counts()
    header = (f"Each pair of variants with a paper AP: the paper's better one first, our mean {a['metric']} "
              f"difference in points, its test over seeds and Holm's correction over the {len(table)} pairs "
              f"(verdict at p (Holm) < {a['alpha']:g}; pairs closer than {PAPER_TIE} AP in the paper count as on "
              "par). Verdicts: " + "; ".join(f"{v}: {n}" for v, n in counts.items()) + ".\n\n")
    printed = format_orderings(table)
    notes = [f"- `{col}`: {COLUMN_NOTES[key]}" for col, key in _note_keys(printed)]
    md = (header + to_markdown(printed.set_index("paper: better"), left=("paper: worse", "seeds", "test", "verdict"))
          + "\n\nColumns:\n\n" + "\n".join(notes) + "\n")
    return {"orderings.md": atomic.write_text(Path(out) / "orderings.md", md),
            "orderings.csv": atomic.write_text(Path(out) / "orderings.csv", table.to_csv(index=False,
                                                                                          float_format="%.4g"))}


def summary_lines(table: pd.DataFrame) -> list[str]:
    """index.md: the orderings that hold, are reversed, need more seeds (and how many), or would have shown."""
    def names(rows: pd.DataFrame, extra=lambda r: "") -> str:
        return "; ".join(f"{r.label_higher} > {r.label_lower}{extra(r)}" for r in rows.itertuples()) or "none"

    hold, rev = table[table["verdict"] == "holds"], table[table["verdict"] == "reversed"]
    open_ = table[(table["verdict"] == "inside seed noise") | table["verdict"].str.startswith("1 seed")]
    enough = open_["seeds_needed"] <= open_[["n_higher", "n_lower"]].min(axis=1)
    lines = [f"- Hold ({len(hold)}): {names(hold)}", f"- Reversed ({len(rev)}): {names(rev)}",
             f"- Need more seeds ({(~enough).sum()}): "
             + names(open_[~enough], lambda r: f" ({_needed(r.seeds_needed, r.paper_delta)} seeds each)"
                     if not pd.isna(r.seeds_needed) else " (1 seed so far: no spread to size it)")]
    undecided = table[table["verdict"].isin([PAR_UNDECIDED, PAR_UNTESTED])]
    if len(undecided):
        lines.append(f"- On par in the paper, undecided here ({len(undecided)}): "
                     + names(undecided, lambda r: f" (Δ {r.delta:+.1f}, "
                             + (f"95% CI {_interval(r.ci_low, r.ci_high)})" if r.verdict == PAR_UNDECIDED
                                else "1 seed so far: no interval)")))
    if enough.any():  # power was there for a difference of the paper's size, and none showed
        lines.append(f"- Not seen, though the seeds suffice for the paper's Δ ({enough.sum()}): "
                     + names(open_[enough], lambda r: f" (Δ {r.delta:+.1f} vs the paper's {r.paper_delta:.1f})"))
    return lines


def _note_keys(printed: pd.DataFrame) -> list[tuple[str, str]]:
    # "paper ΔAP" is explained by "paper Δ", whatever the metric
    return [("paper: better / worse", "paper: better / worse"),
            *((col, re.sub(r"Δ\w+$", "Δ", col)) for col in printed.columns[2:])]


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def _interval(low: float, high: float) -> str:
    return "—" if pd.isna(low) else f"[{low:+.1f}, {high:+.1f}]"


def _p(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3f}"


def _needed(n: float, paper_delta: float) -> str:
    if paper_delta < PAPER_TIE:
        return "— (paper: on par)"
    return "—" if pd.isna(n) else f"{int(n)}"


def _step(step: float, last: float) -> str:
    return "—" if pd.isna(step) or pd.isna(last) else f"{int(step)} of {int(last)}"
