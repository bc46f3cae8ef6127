import json
import math
import shutil

import pytest

from ablate.report import NoJobsFound, gather, gather_wandb, load_curves
from ablate.report.gather import axis_columns, varying_axes
from tests.report.conftest import JOBS, LABELS, STEPS, config_key, job_dir


def test_one_row_per_job_folder_with_its_status(sweep):
    df = gather([sweep])
    assert len(df) == len(JOBS)
    assert df["status"].value_counts().to_dict() == {"finished": 6, "failed": 2, "duplicate": 1, "missing": 1}
    assert set(df["job"]) == {str(job_dir(sweep, num).resolve()) for num, *_ in JOBS}


def test_axes_flattened_and_labelled_by_the_axes_that_vary(sweep):
    df = gather([sweep])
    assert axis_columns(df) == ["csq", "proj", "ref", "focal", "offset", "model", "num_queries"]
    assert varying_axes(df) == ["csq", "proj", "ref", "focal", "offset"]  # model, num_queries are constant
    c = df[df["csq"] == "C"]
    assert set(c["variant"]) == {LABELS["C"]} == {"csq=C proj=n/a ref=query focal=true offset=true"}
    assert df.loc[df["csq"] == "full", "num_queries"].tolist() == [20, 20, 20]  # ints stay ints
    assert df.loc[df["csq"] == "C", "error"].dropna().tolist() == ["loss is NaN"]


def test_missing_job_joins_its_variant_from_hydra_overrides(sweep):
    df = gather([sweep])
    missing = df[df["status"] == "missing"].iloc[0]
    assert missing["seed"] == 2
    assert missing["variant_key"] == config_key("detr")
    assert missing["variant"] == LABELS["detr"]
    assert not missing["counted"]


def test_each_model_counted_once(sweep):
    df = gather([sweep])
    counted = df[df["counted"]]
    assert len(counted) == 6
    assert counted["status"].eq("finished").all()  # the duplicate's original is gathered, so it counts there
    dup = df[df["status"] == "duplicate"].iloc[0]
    assert dup["duplicate_of"] == str(job_dir(sweep, 7))


def test_duplicate_counts_when_its_original_is_not_gathered(sweep, tmp_path):
    only = tmp_path / "only"
    shutil.copytree(job_dir(sweep, 8), only / "8_dup")
    result = json.loads((only / "8_dup" / "result.json").read_text())
    result["metrics"] = {}  # a duplicate that skipped training: metrics come from the original job
    (only / "8_dup" / "result.json").write_text(json.dumps(result))
    df = gather([only])
    assert df["counted"].tolist() == [True]
    assert df["AP"].iloc[0] == pytest.approx(0.34)


def test_same_config_and_seed_in_two_sweeps_counted_once(sweep, tmp_path):
    other = tmp_path / "rerun"
    shutil.copytree(job_dir(sweep, 0), other / "0_copy")
    df = gather([sweep, other])
    assert len(df) == len(JOBS) + 1
    same = df[(df["variant_key"] == config_key("detr")) & (df["seed"] == 0)]
    assert same["counted"].tolist() == [True, False]
    # the report says which job it kept, from the run files as they are
    assert same["kept"].tolist()[1] == same["job"].tolist()[0]
    from ablate.report.index import _problem

    assert _problem(same.iloc[1]).startswith(f"same config and seed as {same['job'].tolist()[0]}: that job's metrics")


def test_load_curves_skips_truncated_line(sweep):
    df = gather([sweep])
    curves = load_curves(df)
    job4 = curves[curves["job"] == str(job_dir(sweep, 4).resolve())]
    assert job4["step"].max() == STEPS  # the truncated step-210 line is gone
    assert len(job4[job4["kind"] == "train"]) == STEPS // 10
    assert len(job4[job4["kind"] == "eval"]) == STEPS // 40
    assert {"job", "kind", "step", "loss", "AP", "AP50"} <= set(curves.columns)
    assert curves["kind"].notna().all() and not curves["step"].isna().any()
    # the failed job's partial log is read too, but marked as not counted
    failed = curves[curves["job"] == str(job_dir(sweep, 5).resolve())]
    assert failed["step"].max() == 120 and not failed["counted"].any()


def test_unreadable_result_is_kept(sweep):
    (job_dir(sweep, 0) / "result.json").write_text('{"status": "fin')
    df = gather([sweep])
    row = df[df["job"] == str(job_dir(sweep, 0).resolve())].iloc[0]
    assert row["status"] == "unreadable" and "result.json" in row["error"]
    assert math.isnan(row["AP"]) and not row["counted"]


def test_no_job_folder_raises(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(NoJobsFound, match="no job folder"):
        gather([tmp_path / "empty", tmp_path / "does-not-exist"])


def test_gather_wandb_needs_online(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(RuntimeError, match="online"):
        gather_wandb("me/ablate")
