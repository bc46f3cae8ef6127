import math

import pandas as pd

from ablate.report.orderings import ordering_table
from ablate.report.settle import settle_line, settle_orderings, settle_variants, settled_step
from tests.report.test_orderings import frame

STEPS = [10, 20, 30, 40]
# AP (fractions) per step and seed: "good" is below "bad" at step 10, above from 20; significant from 30.
CURVES = {
    ("good", 0): [0.10, 0.31, 0.40, 0.50], ("good", 1): [0.12, 0.28, 0.41, 0.51], ("good", 2): [0.11, 0.35, 0.42, 0.52],
    ("bad", 0): [0.20, 0.20, 0.20, 0.20], ("bad", 1): [0.21, 0.30, 0.21, 0.21], ("bad", 2): [0.22, 0.22, 0.22, 0.22],
}


def curves():
    return pd.DataFrame([{"job": f"{v}{s}", "variant": v, "seed": s, "counted": True, "kind": "eval", "step": st,
                          "AP": ap, "AP50": 2 * ap}
                         for (v, s), values in CURVES.items() for st, ap in zip(STEPS, values)])


def test_settled_step():
    assert settled_step(pd.Series([1, -1, 1, 1], index=STEPS)) == 30
    assert settled_step(pd.Series([1, 1, 1], index=[1, 2, 3])) == 1
    assert settled_step(pd.Series([-1, 1], index=[5, 9])) == 9


def test_pair_sign_and_verdict_settle():
    df, summary = frame({"good": [50, 51, 52], "bad": [20, 21, 22]}, {"good": 40.9, "bad": 34.9})
    df["seed"] = [0, 1, 2, 0, 1, 2]
    table = settle_orderings(ordering_table(df, summary), curves())
    row = table.iloc[0]
    assert row["verdict"] == "holds" and row["last_step"] == 40
    assert row["sign_final_step"] == 20  # below at step 10, above from 20 on
    assert row["verdict_final_step"] == 30  # at step 20 the difference is inside the noise
    assert settle_line(table) == ("every ordering's sign was final from step 20 of 40; the 1 decided Holm verdict "
                                  "from step 30.")


def test_variant_sign_against_reference():
    settled = settle_variants(curves(), "bad", ["bad", "good"], metric="AP50")
    assert settled["good"] == 20 and pd.isna(settled["bad"])


def test_line_says_how_many_orderings_settled_at_each_step():
    table = pd.DataFrame({"last_step": [40, 40, 40], "sign_final_step": [10, 10, 40], "verdict": ["x"] * 3,
                          "verdict_final_step": [math.nan] * 3})
    assert settle_line(table) == ("1 of 3 orderings still changed sign up to the last evaluation (step 40): this "
                                  "budget did not settle them (2 of 3 final from step 10); no verdict is decided.")
    table["sign_final_step"] = [10, 20, 30]
    assert settle_line(table) == ("every ordering's sign was final from step 30 of 40 (1 of 3 final from step 10, "
                                  "1 of 3 final from step 20, 1 of 3 final from step 30); no verdict is decided.")
