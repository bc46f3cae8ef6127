"""The report never dies on one bad job: every malformed result.json is `unreadable`, with the reason."""

import json

import pytest

from ablate.report import gather, write_report
from ablate.report.schema import result_problem
from tests.report.conftest import job_dir

BAD = {
    "null": (b"null", "a JSON null, not an object"),
    "array": (b"[]", "a JSON array, not an object"),
    "latin1": ('{"status": "finished", "variant": "caf\xe9"}'.encode("latin-1"), "utf-8"),
    "truncated": (b'{"status": "fin', "not JSON"),
    "metrics_list": (json.dumps({"status": "finished", "metrics": [0.1]}).encode(), "`metrics` is an array"),
    "seed_string": (json.dumps({"status": "finished", "seed": "0"}).encode(), "`seed` is a string"),
    "ap_string": (json.dumps({"status": "finished", "metrics": {"AP": "0.3"}}).encode(), "`metrics.AP` is a string"),
    "status_number": (json.dumps({"status": 3}).encode(), "`status` is a number"),
    "axes_nested": (json.dumps({"status": "finished", "axes": {"csq": {"a": 1}}}).encode(), "`axes.csq` is an object"),
    "per_class_bad": (json.dumps({"status": "finished", "per_class": [{"AP": "x"}]}).encode(),
                      "`per_class[0].AP` is a string"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_result_json_is_unreadable_with_reason(sweep, case):
    data, reason = BAD[case]
    (job_dir(sweep, 0) / "result.json").write_bytes(data)
    df = gather([sweep])
    row = df[df["job"] == str(job_dir(sweep, 0).resolve())].iloc[0]
    assert row["status"] == "unreadable" and reason in row["error"], row["error"]
    assert not row["counted"]
    assert row["variant"] == df[df["csq"] == "detr"]["variant"].iloc[0]  # joined its variant from overrides.yaml


def test_report_is_written_with_every_kind_of_bad_file(sweep, tmp_path):
    for num, case in zip((0, 3, 6, 7), ("null", "latin1", "metrics_list", "seed_string")):
        (job_dir(sweep, num) / "result.json").write_bytes(BAD[case][0])
    out = write_report([sweep], tmp_path / "rep")
    index = (out / "index.md").read_text()
    assert "4 unreadable" in index and "a JSON null, not an object" in index and "`seed` is a string" in index
    assert (out / "table.md").is_file() and (out / "ap_bars.png").is_file()


def test_a_good_result_has_no_problem():
    assert result_problem({"status": "finished", "seed": 0, "metrics": {"AP": None, "AP50": 0.5},
                           "axes": {"csq": "C", "focal": True, "num_queries": 20}, "steps": 10.0,
                           "per_class": [{"id": 1, "name": "a", "AP": None, "AP50": 0.3}]}) is None


def test_bad_metrics_lines_do_not_break_curves(sweep, tmp_path):
    from ablate.report import load_curves

    with open(job_dir(sweep, 0) / "metrics.jsonl", "a") as f:
        f.write('[1, 2]\n"kind step"\n{"kind": "eval", "step": 210, "AP": "x", "AP50": null}\n')
    df = gather([sweep])
    curves = load_curves(df)
    job = curves[curves["job"] == str(job_dir(sweep, 0).resolve())]
    assert job["step"].max() == 210 and job["AP"].isna().iloc[-1]
    assert (write_report([sweep], tmp_path / "rep") / "convergence.png").is_file()
