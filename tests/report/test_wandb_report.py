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
