from pathlib import Path

import pytest

from ablate.report import write_report

pytest.importorskip("wandb")


def test_report_logged_offline_as_report_run(sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    out = write_report([sweep], tmp_path / "rep", wandb="me/ablate")
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_file = next(runs[0].glob("run-*.wandb"))
    assert run_file.stat().st_size > 1000  # the table and three images, not just a header
    index = (out / "index.md").read_text()
    assert "W&B runs not gathered" in index and "online" in index  # offline: listing runs needs the API
    assert "report logged to W&B (offline, job_type `report`, group `2026-11-25_14-00-00`)" in index


def test_report_run_links_the_runs_it_summarises(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from ablate.report.wandb_report import linked_runs, log_report
    from tests.runs.wandb_records import summarize

    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    jobs = []
    for i, info in enumerate([{"mode": "offline", "id": "aaa111", "entity": None, "project": "ablate"},
                              {"mode": "online", "id": "bbb222", "url": "https://wandb.ai/me/ablate/runs/bbb222"},
                              None]):
        job = tmp_path / f"{i}_job"
        job.mkdir()
        (job / "result.json").write_text(json.dumps({"status": "finished", "variant": "csq=T", "seed": i,
                                                     "metrics": {"AP": 0.1 * i}, "wandb": info}))
        jobs.append(job)
    rows = linked_runs(jobs, "me", "ablate")
    assert [r["link"] for r in rows] == ["me/ablate/runs/aaa111", "https://wandb.ai/me/ablate/runs/bbb222"]
    frame = pd.DataFrame({"AP": [0.1]}, index=pd.Index(["csq=T"], name="variant"))
    run_dir = log_report("me/ablate", "g", frame, frame, {}, tmp_path / "rep", job_dirs=jobs)
    run = summarize(next(Path(run_dir).glob("run-*.wandb")))
    assert run["run"].job_type == "report" and run["config"]["runs"] == ["aaa111", "bbb222"]
    assert run["history"][0]["runs/_type"] == "table-file" and run["history"][0]["runs/nrows"] == 2
