"""Which of the paper's orderings hold in a sweep, and which are inside the seed noise.

For every pair of variants that both have a paper AP, the paper says which is better (or that they are on par,
|Δ| < `PAPER_TIE` AP). Our verdict compares the two variants' per-seed values with Welch's t-test: the ordering
*holds* (or is *reversed*) when p < `alpha`, and is *inside the seed noise* otherwise. With one seed on either side
there is no spread, so nothing can be said beyond the sign.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
from scipy import stats

from ablate.report import atomic
from ablate.report.tables import to_markdown

PAPER_TIE = 0.5  # AP points: the paper reports one run per row, so closer rows are read as "on par", not ranked


def ordering_table(df: pd.DataFrame, summary: pd.DataFrame, metric: str = "AP",
                   alpha: float = 0.05) -> pd.DataFrame | None:
    """One row per pair of variants with a paper AP (table order); None when fewer than two have one."""
    with_paper = [v for v in summary.index if not pd.isna(summary.loc[v, "paper_AP"])]
    if len(with_paper) < 2:
        return None
    counted = df[df["counted"].astype(bool) & df[metric].notna()]
    values = {v: counted.loc[counted["variant"] == v, metric].astype(float).to_numpy() * 100 for v in with_paper}
    rows = []
    for a, b in itertools.combinations(with_paper, 2):
        pa, pb = float(summary.loc[a, "paper_AP"]), float(summary.loc[b, "paper_AP"])
        hi, lo = (a, b) if pa >= pb else (b, a)  # the paper's better one first
        x, y = values[hi], values[lo]
        delta = x.mean() - y.mean() if len(x) and len(y) else math.nan
        p = _welch_p(x, y)
        rows.append({"paper_higher": hi, "paper_lower": lo, "paper_delta": abs(pa - pb),
                     "delta": delta, "p_value": p, "n_higher": len(x), "n_lower": len(y),
                     "verdict": verdict(abs(pa - pb), delta, p, alpha)})
    table = pd.DataFrame(rows)
    table.attrs.update(metric=metric, alpha=alpha)
    return table


def verdict(paper_delta: float, delta: float, p: float, alpha: float = 0.05) -> str:
    """How our Δ (paper's better − paper's worse, in AP points) relates to the paper's."""
    if math.isnan(delta):
        return "no finished runs"
    if paper_delta < PAPER_TIE:
        if math.isnan(p):
            return "paper: on par; 1 seed, untested"
        return "on par in both" if p >= alpha else "paper: on par; here they differ"
    if math.isnan(p):
        return "1 seed, untested (" + ("same sign)" if delta > 0 else "opposite sign)")
    if p >= alpha:
        return "inside seed noise"
    return "holds" if delta > 0 else "reversed"


def format_orderings(table: pd.DataFrame) -> pd.DataFrame:
    m = table.attrs.get("metric", "AP")
    return pd.DataFrame({
        "paper: better": table["paper_higher"],
        "paper: worse": table["paper_lower"],
        f"paper Δ{m}": table["paper_delta"].map(lambda v: f"{v:.1f}"),
        f"here Δ{m} (better − worse)": table["delta"].map(lambda v: "—" if pd.isna(v) else f"{v:+.1f}"),
        "seeds": [f"{a} / {b}" for a, b in zip(table["n_higher"], table["n_lower"])],
        "Welch p": table["p_value"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}"),
        "verdict": table["verdict"],
    })


def write_orderings(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """orderings.md (with a line on how to read it) and orderings.csv."""
    a = table.attrs
    counts = table["verdict"].value_counts()
    header = (f"Each pair of variants with a paper AP: the paper's better one first, our mean {a['metric']} "
              f"difference in points, and Welch's t-test over seeds (verdict at p < {a['alpha']:g}; pairs closer "
              f"than {PAPER_TIE} AP in the paper count as on par). Verdicts: "
              + "; ".join(f"{v}: {n}" for v, n in counts.items()) + ".\n\n")
    md = header + to_markdown(format_orderings(table).set_index("paper: better"),
                              left=("paper: worse", "seeds", "verdict")) + "\n"
    return {"orderings.md": atomic.write_text(Path(out) / "orderings.md", md),
            "orderings.csv": atomic.write_text(Path(out) / "orderings.csv", table.to_csv(index=False,
                                                                                          float_format="%.4g"))}


def _welch_p(x, y) -> float:
    if len(x) < 2 or len(y) < 2:
        return math.nan
    if x.std(ddof=1) == 0 and y.std(ddof=1) == 0:
        return 0.0 if x.mean() != y.mean() else 1.0
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)
