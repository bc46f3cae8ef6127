"""A real multirun of tiny jobs, as the user types it: duplicates, the auto-written report, failed jobs."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from tests.tiny import TINY


def multirun(args, sweep, cache):
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "ABLATE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "ablate", "-m", *args, "logger=none", *TINY,
                           f"hydra.sweep.dir={sweep}"], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def user_sweep(tmp_path_factory):
    """The user's own words: `python -m ablate -m csq=C,T,P,I proj=scalar,full` (with a tiny budget)."""
    tmp = tmp_path_factory.mktemp("sweep")
    sweep = tmp / "sweep"
    proc = multirun(["csq=C,T,P,I", "proj=scalar,full"], sweep, tmp / "cache")
    return proc, sweep


def results(sweep):
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def test_literal_command_trains_six_models_and_records_two_duplicates(user_sweep):
    proc, sweep = user_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results(sweep)
    assert len(res) == 8
    status = sorted(r["status"] for r in res.values())
    assert status == ["duplicate"] * 2 + ["finished"] * 6
    for r in res.values():
        if r["status"] == "duplicate":
            owner = json.loads((sweep / os.path.basename(r["duplicate_of"]) / "result.json").read_text())
            assert owner["status"] == "finished" and owner["run_key"] == r["run_key"]
            assert r["axes"]["csq"] in ("C", "P") and r["axes"]["proj"] == "n/a"
    assert {r["variant"] for r in res.values()} == {
        "csq=C proj=n/a ref=query focal=true offset=true", "csq=P proj=n/a ref=query focal=true offset=true",
        *(f"csq={c} proj={p} ref=query focal=true offset=true" for c in "TI" for p in ("scalar", "full"))}


def test_report_is_written_automatically(user_sweep):
    _, sweep = user_sweep
    report = sweep / "report"
    index = (report / "index.md").read_text()
    for name in ("table.md", "table.csv", "table.tex", "ap_bars.png", "convergence.png", "loss.png"):
        assert (report / name).is_file() and name in index, name
    table = pd.read_csv(report / "table.csv")
    assert len(table) == 6  # one row per model: the duplicates are counted once
    assert "duplicate" in (report / "table.md").read_text()
    for png in ("ap_bars.png", "convergence.png", "loss.png"):
        with Image.open(report / png) as im:
            w, h = im.size
            assert w >= 600 and h >= 300 and len(set(im.convert("L").getdata())) > 10, png  # not a blank image


def test_rerun_into_the_same_folder_skips_finished_jobs(user_sweep, tmp_path):
    proc, sweep = user_sweep
    before = {k: r["finished_at"] for k, r in results(sweep).items()}
    again = multirun(["csq=C,T,P,I", "proj=scalar,full"], sweep, tmp_path / "cache")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {k: r["finished_at"] for k, r in results(sweep).items()} == before


def test_failed_job_is_recorded_and_reported(tmp_path):
    sweep = tmp_path / "sweep"
    proc = multirun(["model.init_from=null,/nonexistent/checkpoint.pt"], sweep, tmp_path / "cache")
    assert proc.returncode != 0  # the multirun says that something failed
    res = results(sweep)
    failed = [r for r in res.values() if r["status"] == "failed"]
    assert len(res) == 2 and len(failed) == 1
    assert "no such file /nonexistent/checkpoint.pt" in failed[0]["error"]["message"]
    assert "Traceback" in failed[0]["error"]["traceback"]
    assert [r["status"] for r in res.values() if r is not failed[0]] == ["finished"]
    table = (sweep / "report" / "table.md").read_text()
    assert "failed" in table


def test_report_cli_draws_attention_maps_of_real_jobs(user_sweep, tmp_path, monkeypatch):
    """`python -m ablate.attention JOB` on real checkpoints, then `python -m ablate.report SWEEP --attention-run JOB
    --compare-attention JOB JOB` from the files it wrote."""
    from ablate.attention.__main__ import main as attention
    from ablate.report.__main__ import main

    _, sweep = user_sweep
    monkeypatch.setenv("ABLATE_CACHE", str(sweep.parent / "cache"))
    jobs = sorted(p.parent for p in sweep.glob("*/result.json")
                  if json.loads(p.read_text())["status"] == "finished")
    assert attention([str(jobs[0])]) == 0 and attention([str(jobs[1])]) == 0
    assert json.loads((jobs[0] / "attention" / "index.json").read_text())["images"][0]["png"] == "image0.png"
    out = tmp_path / "report"
    code = main([str(sweep), "--out", str(out), "--no-wandb", "--attention-run", str(jobs[0]),
                 "--compare-attention", str(jobs[0]), str(jobs[1])])
    assert code == 0
    for name in ("attention.png", "attention_comparison.png"):
        with Image.open(out / name) as im:
            assert im.size[0] >= 600 and len(set(im.convert("L").getdata())) > 50, name
        assert name in (out / "index.md").read_text()
