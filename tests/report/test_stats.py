"""The issue's check: result.json files of known AP written by hand (docs/run_files.md), fed to
`python -m ablate.report`; p_holm, ci_low, ci_high, seeds_needed, p_paired compared with a computation from the
textbook formulas (statistics.NormalDist, scipy's t distribution only for its cdf/ppf)."""

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import t as t_dist

from ablate.report.__main__ import main
from ablate.report.stats import holm, mean_interval, seeds_needed, welch

AXES = {
    "full": {"csq": "full", "proj": "diagonal", "ref": "query", "focal": True, "offset": True},
    "C": {"csq": "C", "proj": "n/a", "ref": "query", "focal": True, "offset": True},
    "detr": {"csq": "detr", "proj": "n/a", "ref": "n/a", "focal": False, "offset": False},
}
PAPER = {"full": 40.9, "C": 37.1, "detr": 34.9}
# AP in percent per seed. full and C share seeds 0-2 (a paired design); detr ran seeds 0, 1 and 3.
AP = {"full": {0: 31.0, 1: 33.5, 2: 32.2}, "C": {0: 29.0, 1: 32.5, 2: 30.0}, "detr": {0: 20.0, 1: 24.0, 3: 21.0}}


def write_result(job: Path, variant: str, seed: int, ap: float, **extra) -> None:
    job.mkdir(parents=True)
    result = {"status": "finished", "axes": {**AXES[variant], "model": "tiny", "num_queries": 20},
              "variant": variant, "config_key": f"key-{variant}", "seed": seed,
              "metrics": {"AP": ap / 100, "AP50": 2 * ap / 100, "AP75": ap / 100, "APs": ap / 200,
                          "APm": ap / 100, "APl": ap / 100}, **extra}
    (job / "result.json").write_text(json.dumps(result))


@pytest.fixture
def hand_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    for num, (variant, seed, ap) in enumerate((v, s, a) for v, seeds in AP.items() for s, a in seeds.items()):
        write_result(sweep / f"{num}_{variant}_{seed}", variant, seed, ap)
    return sweep


def welch_by_hand(x, y):
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))  # Welch–Satterthwaite
    delta = statistics.mean(x) - statistics.mean(y)
    half = t_dist.ppf(0.975, df) * se
    return delta, 2 * t_dist.sf(abs(delta) / se, df), delta - half, delta + half


def paired_by_hand(x, y):
    d = [a - b for a, b in zip(x, y)]
    tstat = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(len(d)))
    return 2 * t_dist.sf(abs(tstat), len(d) - 1)


def holm_by_hand(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def needed_by_hand(sx, sy, delta):
    z = statistics.NormalDist().inv_cdf(0.975) + statistics.NormalDist().inv_cdf(0.8)
    return max(2, math.ceil(z**2 * (sx**2 + sy**2) / delta**2))


def test_orderings_csv_against_hand_computation(hand_sweep, tmp_path):
    out = tmp_path / "report"
    assert main([str(hand_sweep), "--out", str(out), "--no-wandb"]) == 0
    csv = pd.read_csv(out / "orderings.csv")
    rows = {(r.paper_higher.split()[0].removeprefix("csq="), r.paper_lower.split()[0].removeprefix("csq=")): r
            for r in csv.itertuples()}
    assert set(rows) == {("full", "C"), ("full", "detr"), ("C", "detr")}
    expected_p = {}
    for (hi, lo), row in rows.items():
        x, y = list(AP[hi].values()), list(AP[lo].values())
        delta, p_welch, low, high = welch_by_hand(x, y)
        assert row.delta == pytest.approx(delta, rel=1e-3)
        assert row.ci_low == pytest.approx(low, rel=1e-3) and row.ci_high == pytest.approx(high, rel=1e-3)
        assert row.p_welch == pytest.approx(p_welch, rel=1e-3)
        assert row.seeds_needed == needed_by_hand(statistics.stdev(x), statistics.stdev(y), PAPER[hi] - PAPER[lo])
        if set(AP[hi]) == set(AP[lo]):  # same seeds: the paired test decides
            assert row.test == "paired"
            assert row.p_paired == pytest.approx(paired_by_hand(x, y), rel=1e-3)
            expected_p[(hi, lo)] = paired_by_hand(x, y)
        else:
            assert row.test == "Welch" and math.isnan(row.p_paired)
            expected_p[(hi, lo)] = p_welch
    keys = list(expected_p)
    for key, p_holm in zip(keys, holm_by_hand([expected_p[k] for k in keys])):
        assert rows[key].p_holm == pytest.approx(p_holm, rel=1e-3)
        assert rows[key].verdict == ("holds" if p_holm < 0.05 else "inside seed noise")
    md = (out / "orderings.md").read_text()
    for column in ("p (Holm)", "95% CI", "seeds needed", "test"):
        assert f"- `{column}`:" in md  # each column explained in one line
    index = (out / "index.md").read_text()
    assert "- Hold (" in index and "- Need more seeds (" in index


def test_table_interval_against_hand_computation(hand_sweep, tmp_path):
    out = tmp_path / "report"
    assert main([str(hand_sweep), "--out", str(out), "--no-wandb"]) == 0
    table = pd.read_csv(out / "table.csv")
    row = table[table["variant"].str.startswith("csq=full")].iloc[0]
    x = list(AP["full"].values())
    half = t_dist.ppf(0.975, 2) * statistics.stdev(x) / math.sqrt(3)
    assert row["AP_ci_low"] == pytest.approx(statistics.mean(x) - half, rel=1e-3)
    assert row["AP_ci_high"] == pytest.approx(statistics.mean(x) + half, rel=1e-3)
    assert f"[{statistics.mean(x) - half:.1f}, {statistics.mean(x) + half:.1f}]" in (out / "table.md").read_text()


def test_degenerate_inputs():
    assert all(math.isnan(v) for v in mean_interval([1.0]))
    assert mean_interval([2.0, 2.0]) == (2.0, 2.0)
    assert welch([1.0], [2.0, 3.0])["ci_low"] != welch([1.0], [2.0, 3.0])["ci_low"]  # NaN: one seed has no spread
    assert welch([3.0, 3.0], [1.0, 1.0]) == {"delta": 2.0, "p_welch": 0.0, "ci_low": 2.0, "ci_high": 2.0}
    assert holm([0.01, math.nan, 0.04]) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)
    assert seeds_needed(1.0, 1.0, 100.0) == 2  # at least 2
    assert math.isnan(seeds_needed(math.nan, 1.0, 2.0)) and math.isnan(seeds_needed(1.0, 1.0, 0.0))
