import pandas as pd
import pytest

from ablate.report.convergence import (
    convergence_table,
    format_convergence,
    speedup,
    steps_to_reach,
    write_convergence,
)

STEPS = [100, 200, 300, 400, 500]
# AP50 per eval step. DETR finals 0.30, 0.50, 0.40 -> X = 0.40. DETR s0 never reaches X.
CURVES = {
    ("detr", 0): [0.04, 0.20, 0.25, 0.28, 0.30],
    ("detr", 1): [0.10, 0.20, 0.30, 0.45, 0.50],  # X at 400
    ("detr", 2): [0.10, 0.20, 0.30, 0.35, 0.40],  # X at 500 (>= counts)
    ("cond", 0): [0.45, 0.50, 0.55, 0.60, 0.60],  # X at 100
    ("cond", 1): [0.30, 0.41, 0.50, 0.55, 0.60],  # X at 200
    ("cond", 2): [0.20, 0.30, 0.40, 0.50, 0.55],  # X at 300
}


def hand_curves(curves=CURVES) -> pd.DataFrame:
    rows = [{"job": f"{v}{s}", "variant": v, "seed": s, "counted": True, "kind": "eval", "step": step, "AP50": ap}
            for (v, s), values in curves.items() for step, ap in zip(STEPS, values)]
    rows.append({"job": "detr0", "variant": "detr", "seed": 0, "counted": True, "kind": "train", "step": 10,
                 "loss": 3.0})
    return pd.DataFrame(rows)


def test_steps_to_reach_detr_final_ap50():
    steps = steps_to_reach(hand_curves(), 0.40).set_index("job")["step"]
    assert steps.isna().tolist() == [True, False, False, False, False, False]
    assert steps[["detr1", "detr2", "cond0", "cond1", "cond2"]].tolist() == [400, 500, 100, 200, 300]


def test_speedup_ratio_over_seed_pairs():
    table = convergence_table(hand_curves(), "detr", within=100)
    assert table.attrs["threshold"] == pytest.approx(0.40)
    cond = table.loc["cond"]
    ratios = [400 / 200, 500 / 300]  # seed 0 pair: DETR never reached X -> counted apart
    assert cond["ratio_mean"] == pytest.approx(sum(ratios) / 2)
    assert cond["ratio_std"] == pytest.approx(pd.Series(ratios).std())
    assert (cond["ratio_min"], cond["ratio_max"]) == pytest.approx((5 / 3, 2.0))
    assert (cond["n_pairs"], cond["n_unreached"]) == (2, 1)
    assert table.loc["detr", "n_reached"] == 2 and table.loc["cond", "n_reached"] == 3
    # AP50 >= 0.05 by step 100: DETR seed 0 is at 0.04
    assert table.loc["detr", "early_fraction"] == pytest.approx(2 / 3)
    assert table.loc["cond", "early_fraction"] == 1.0


def test_not_reached_is_reported():
    curves = {k: v for k, v in CURVES.items() if k[0] == "detr"}
    curves[("slow", 0)] = [0.0, 0.0, 0.01, 0.02, 0.03]
    table = convergence_table(hand_curves(curves), "detr")
    slow = format_convergence(table).loc["slow"]
    assert slow["steps to X"] == "not reached"
    assert "not reached" in slow.iloc[4]  # speed-up column
    assert table.loc["slow", "early_fraction"] == 0.0
    assert "s0: not reached" in table.loc["detr", "steps_per_seed"]


def test_speedup_without_shared_seeds_uses_all_pairs():
    steps = pd.DataFrame({"variant": ["detr", "detr", "cond"], "seed": [0, 1, 7], "step": [400.0, 600.0, 200.0]})
    result = speedup(steps, "detr", "cond")
    assert result["n_pairs"] == 2 and result["ratio_mean"] == pytest.approx(2.5)


def test_write_convergence(tmp_path):
    files = write_convergence(convergence_table(hand_curves(), "detr"), tmp_path)
    md = files["convergence.md"].read_text()
    assert "40.0%" in md and "| cond" in md
    csv = pd.read_csv(files["convergence.csv"], index_col="variant")
    assert csv.loc["cond", "ratio_mean"] == pytest.approx(1.8333, abs=1e-3)


def test_no_reference_curves():
    assert convergence_table(hand_curves({("cond", 0): CURVES[("cond", 0)]}), "detr") is None


def test_early_progress_at_several_budgets():
    # default budgets: up to 6 eval steps of the shortest run, evenly spaced, ending at its last (500)
    table = convergence_table(hand_curves(), "detr")
    assert table.attrs["within"] == [100.0, 200.0, 300.0, 400.0, 500.0]
    from ablate.report.convergence import _budgets
    assert _budgets(hand_curves(), "AP50", 500.0, most=2) == [200.0, 500.0]  # 5 evals, stride 3 from the end
    table = convergence_table(hand_curves(), "detr", within=[100, 200])
    assert table.loc["detr", "early_fraction@100"] == pytest.approx(2 / 3)  # seed 0 at 0.04 by step 100
    assert table.loc["detr", "early_fraction@200"] == 1.0
    assert table.loc["detr", "early_fraction"] == 1.0  # the last budget
    cols = list(format_convergence(table).columns)
    assert cols[-2:] == ["AP50 ≥ 5% by step 100", "AP50 ≥ 5% by step 200"]
