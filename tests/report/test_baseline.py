import json
import shutil

import pandas as pd
import pytest
from scipy import stats

from ablate.report.__main__ import main
from tests.report.conftest import job_dir


def test_baseline_side_by_side(sweep, tmp_path):
    new = tmp_path / "new"
    shutil.copytree(sweep, new)
    for num, ap in ((6, 0.36), (7, 0.40)):  # the new code improves `full` by 6 points
        path = new / job_dir(sweep, num).name / "result.json"
        result = json.loads(path.read_text())
        result["metrics"]["AP"] = ap
        path.write_text(json.dumps(result))
    out = tmp_path / "rep"
    assert main([str(new), "--baseline", str(sweep), "--out", str(out), "--no-wandb"]) == 0
    table = pd.read_csv(out / "baseline.csv").set_index("variant")
    row = table.loc["csq=full proj=diagonal ref=query focal=true offset=true model=tiny num_queries=20"]
    assert row["delta"] == pytest.approx(6.0)
    ci = stats.ttest_ind([36, 40], [30, 34], equal_var=False).confidence_interval()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-3)
    detr = table.loc["csq=detr proj=n/a ref=n/a focal=false offset=false model=tiny num_queries=20"]
    assert detr["delta"] == pytest.approx(0.0) and detr["n_new"] == 2
    assert "## Against the baseline" in (out / "index.md").read_text()
    assert f"| +6.0 | [{ci.low:+.1f}, {ci.high:+.1f}] |" in " ".join((out / "baseline.md").read_text().split())


def test_missing_baseline_fails_before_writing(sweep, tmp_path):
    assert main([str(sweep), "--baseline", str(tmp_path / "nothing"), "--out", str(tmp_path / "rep")]) == 2
    assert not (tmp_path / "rep").exists()
