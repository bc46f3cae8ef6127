import json

import pandas as pd
import pytest

from ablate.report import gather, summarize
from ablate.report.per_class import format_per_class, per_class_table, write_per_class
from tests.report.conftest import job_dir

# (job, rectangle AP, ellipse AP): C helps rectangles, full helps ellipses
PER_CLASS = {3: (0.40, 0.10), 4: (0.44, 0.12), 6: (0.20, 0.50), 7: (0.22, None), 8: (0.22, None)}


@pytest.fixture
def with_per_class(sweep):
    for num, (rect, ell) in PER_CLASS.items():
        path = job_dir(sweep, num) / "result.json"
        result = json.loads(path.read_text())
        result["per_class"] = [{"id": 1, "name": "rectangle", "AP": rect, "AP50": rect * 2},
                               {"id": 2, "name": "ellipse", "AP": ell, "AP50": None if ell is None else ell * 2}]
        path.write_text(json.dumps(result))
    return sweep


def test_per_class_mean_over_counted_seeds(with_per_class, tmp_path):
    df = gather([with_per_class])
    summary = summarize(df)
    table = per_class_table(df, summary).set_index(["label", "name"])
    c = summary.loc[summary["csq"] == "C", "label"].iloc[0]
    full = summary.loc[summary["csq"] == "full", "label"].iloc[0]
    assert table.loc[(c, "rectangle"), "AP_mean"] == pytest.approx(42.0)
    assert table.loc[(c, "rectangle"), "AP_count"] == 2
    # job 8 duplicates job 7: counted once; job 7's ellipse AP is undefined (null)
    assert table.loc[(full, "rectangle"), "AP_mean"] == pytest.approx(21.0)
    assert table.loc[(full, "ellipse"), "AP_count"] == 1 and table.loc[(full, "ellipse"), "AP_mean"] == 50.0
    wide = format_per_class(per_class_table(df, summary))
    assert list(wide.index) == ["rectangle (1)", "ellipse (2)"]
    assert wide.loc["rectangle (1)", c] == "42.0 ± 2.8 (2)" and wide.loc["ellipse (2)", full] == "50.0 (1)"
    files = write_per_class(per_class_table(df, summary), tmp_path)
    assert "### AP50" in files["per_class.md"].read_text()
    assert len(pd.read_csv(files["per_class.csv"])) == 4


def test_report_links_per_class(with_per_class, tmp_path):
    from ablate.report import write_report

    out = write_report([with_per_class], tmp_path / "rep")
    assert "## Per class" in (out / "index.md").read_text() and (out / "per_class.csv").is_file()


def test_no_per_class_no_file(sweep):
    df = gather([sweep])
    assert per_class_table(df, summarize(df)) is None
