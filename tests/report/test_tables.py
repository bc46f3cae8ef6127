import io
import statistics

import pandas as pd
import pytest

from ablate.report import format_table, gather, summarize, write_tables
from tests.report.conftest import LABELS, job_dir


@pytest.fixture
def summary(sweep):
    return summarize(gather([sweep]))


def pct(mean_std: tuple[float, float]) -> str:
    return f"{mean_std[0]:.1f} ± {mean_std[1]:.1f}"


def by_hand(values: list[float]) -> tuple[float, float]:
    return 100 * statistics.mean(values), 100 * statistics.stdev(values)


def test_one_row_per_variant_in_paper_order(summary):
    assert list(summary.index) == [LABELS["detr"], LABELS["C"], LABELS["T"], LABELS["full"]]


def test_mean_std_against_hand_computation(summary):
    table = format_table(summary)
    assert table.loc[LABELS["C"], "AP"] == pct(by_hand([0.20, 0.23])) == "21.5 ± 2.1"
    assert table.loc[LABELS["full"], "AP"] == pct(by_hand([0.30, 0.34])) == "32.0 ± 2.8"
    assert table.loc[LABELS["detr"], "AP50"] == pct(by_hand([0.20, 0.24])) == "22.0 ± 2.8"
    assert table.loc[LABELS["C"], "AP50"] == pct(by_hand([0.40, 0.46])) == "43.0 ± 4.2"
    assert table.loc[LABELS["full"], "APs"] == pct(by_hand([0.15, 0.17])) == "16.0 ± 1.4"
    assert summary.loc[LABELS["full"], "AP_std"] == pytest.approx(100 * statistics.stdev([0.30, 0.34]))
    assert table["seeds"].tolist() == [2, 2, 0, 2]  # the duplicate of full/seed 1 counts once


def test_failed_missing_duplicate_are_shown(summary):
    table = format_table(summary)
    assert table.loc[LABELS["detr"], "status"] == "1 missing"
    assert table.loc[LABELS["C"], "status"] == "1 failed"
    assert table.loc[LABELS["full"], "status"] == "1 duplicate (counted once)"
    all_failed = table.loc[LABELS["T"]]  # its only job failed: a row with no metrics, not a dropped variant
    assert all_failed["status"] == "1 failed"
    assert all_failed[["AP", "AP50", "APl"]].tolist() == ["—", "—", "—"]
    assert summary.loc[LABELS["T"], "n_failed"] == 1 and pd.isna(summary.loc[LABELS["T"], "AP_mean"])


def test_paper_column(summary):
    assert format_table(summary)["paper AP"].tolist() == ["34.9", "37.1", "37.6", "40.9"]


def test_single_seed_shows_only_the_mean(sweep):
    table = format_table(summarize(gather([job_dir(sweep, 3)])))
    assert table["AP"].tolist() == ["20.0"]
    assert table["seeds"].tolist() == [1]


def test_table_files_parse(summary, tmp_path):
    files = write_tables(summary, tmp_path)
    assert sorted(files) == ["table.csv", "table.md", "table.tex"]

    caption, blank, *md = files["table.md"].read_text().strip().splitlines()
    assert caption.startswith("COCO-style AP") and "All rows: model=tiny, num_queries=20." in caption and not blank
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header == ["variant", "AP", "AP 95% CI", "AP50", "AP75", "APs", "APm", "APl", "seeds", "paper AP",
                      "status"]
    assert set(md[1]) <= set("|-: ") and len(md) == 2 + 4
    assert "| 21.5 ± 2.1 | [2.4, 40.6] |" in " ".join(md[3].split())  # t(0.975, 1) = 12.71: two seeds say little

    csv = pd.read_csv(io.StringIO(files["table.csv"].read_text()), index_col="variant")
    assert csv.loc[LABELS["C"], "AP_mean"] == pytest.approx(21.5)
    assert csv.loc[LABELS["C"], "AP_std"] == pytest.approx(100 * statistics.stdev([0.20, 0.23]), abs=1e-3)
    assert csv.loc[LABELS["T"], "seeds"] == 0 and pd.isna(csv.loc[LABELS["T"], "AP_mean"])
    assert csv.loc[LABELS["full"], "paper_AP"] == pytest.approx(40.9)

    tex = files["table.tex"].read_text()
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 1 + 4  # header + variants
    assert all(row.count("&") == 10 for row in rows)
    best = next(r for r in rows if r.startswith("csq=full"))
    assert r"\bfseries 32.0 \textpm{} 2.8" in best
    assert sum(r"\bfseries" in r for r in rows) == 1
