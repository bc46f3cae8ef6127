import math

import pandas as pd
import pytest

from ablate.report.orderings import format_orderings, ordering_table, summary_lines, verdict, write_orderings


def frame(values: dict[str, list[float]], paper: dict[str, float]):
    df = pd.DataFrame([{"variant": v, "counted": True, "AP": ap / 100} for v, aps in values.items() for ap in aps])
    summary = pd.DataFrame({"paper_AP": [paper.get(v, math.nan) for v in values]}, index=list(values))
    return df, summary


def test_verdicts_from_welch_test():
    df, summary = frame(
        {"detr": [20, 21, 22], "C": [30, 31, 32], "I": [25, 35, 30], "full": [29, 31, 30], "block": [29, 30, 31],
         "P": [40], "x": [1, 2]},
        {"detr": 34.9, "C": 37.1, "I": 40.2, "full": 40.9, "block": 40.8, "P": 37.8})  # x: no paper AP, left out
    t = ordering_table(df, summary).set_index(["paper_higher", "paper_lower"])
    assert len(t) == 15  # 6 variants with a paper AP
    row = t.loc[("C", "detr")]
    # means 31 vs 21, variances 1 and 1: t = 10 / sqrt(2/3) = 12.2 at 4 degrees of freedom -> p < 0.001
    assert row["delta"] == pytest.approx(10.0) and row["p_welch"] < 1e-3 and row["verdict"] == "holds"
    assert row["p_holm"] == pytest.approx(min(1.0, 10 * row["p_welch"]))  # the smallest of 10 tested pairs
    assert row["test"] == "Welch"  # no seeds recorded: nothing to pair
    assert t.loc[("full", "C"), "delta"] == pytest.approx(-1.0)
    assert t.loc[("full", "C"), "verdict"] == "inside seed noise"  # -1 point with std 1: not significant
    assert t.loc[("full", "I"), "verdict"] == "inside seed noise"  # equal means, paper 0.7 apart
    assert t.loc[("full", "block"), "verdict"] == "on par in both"  # paper 40.9 vs 40.8: on par
    assert t.loc[("P", "detr"), "verdict"] == "1 seed, untested (same sign)"


def test_verdict_rules():
    assert verdict(3.0, 5.0, 0.01) == "holds"
    assert verdict(3.0, -5.0, 0.01) == "reversed"
    assert verdict(3.0, 5.0, 0.2) == "inside seed noise"
    assert verdict(0.1, 5.0, 0.01) == "paper: on par; here they differ"
    assert verdict(0.1, 0.2, 0.6, ci=(-1.0, 1.4)) == "on par in both"
    # not significant, but the interval allows 14 points either way: undecided, never "on par"
    assert verdict(0.1, 14.1, 0.23, ci=(-59.4, 87.5)) == "paper: on par; here undecided"
    assert verdict(0.1, 0.2, 0.6) == "paper: on par; here undecided"  # no interval: nothing shown equivalent
    assert verdict(3.0, -1.0, math.nan) == "1 seed, untested (opposite sign)"
    assert verdict(3.0, math.nan, math.nan) == "no finished runs"


def test_write_orderings(tmp_path):
    df, summary = frame({"detr": [20, 21, 22], "full": [30, 31, 32]}, {"detr": 34.9, "full": 40.9})
    files = write_orderings(ordering_table(df, summary), tmp_path)
    md = files["orderings.md"].read_text()
    assert "| full" in md and "holds" in md and "+10.0" in md and "- `p (Holm)`:" in md
    assert list(format_orderings(ordering_table(df, summary)).columns)[0] == "paper: better"
    assert pd.read_csv(files["orderings.csv"])["verdict"].tolist() == ["holds"]


def test_needs_two_paper_rows():
    df, summary = frame({"full": [30, 31], "x": [1, 2]}, {"full": 40.9})
    assert ordering_table(df, summary) is None


def test_summary_lines_keep_undecided_on_par_pairs_apart():
    # the paper has C and detr on par (0.2 AP); two seeds 14 points apart with a huge spread: undecided, not on par
    df, summary = frame({"detr": [10, 23], "C": [29, 32], "full": [44, 45]}, {"detr": 36.9, "C": 37.1, "full": 40.9})
    df["seed"] = [0, 1] * 3
    t = ordering_table(df, summary)
    lines = summary_lines(t)
    row = t.set_index(["paper_higher", "paper_lower"]).loc[("C", "detr")]
    assert row["verdict"] == "paper: on par; here undecided"
    assert any(line.startswith("- On par in the paper, undecided here (1): C > detr (Δ +14.0") for line in lines)


def test_summary_lines_say_a_one_seed_on_par_pair_has_no_interval():
    df, summary = frame({"zero": [5.2], "learned": [30.0], "query": [43.5]},
                        {"zero": 36.8, "learned": 40.7, "query": 40.9})
    lines = summary_lines(ordering_table(df, summary))
    assert any(line.startswith("- On par in the paper, undecided here (1): query > learned (Δ +13.5, 1 seed so far")
               for line in lines)
    assert not any("95% CI —" in line for line in lines)
