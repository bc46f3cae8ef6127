"""End to end: `python -m ablate` as a user runs it, in a subprocess, with a tiny budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ablate.runs.atomic import read_jsonl
from tests.tiny import TINY


def run_cli(args, cwd, cache):
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "ABLATE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "ablate", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_single_run_writes_every_run_file(tmp_path):
    out = tmp_path / "run"
    proc = run_cli([*TINY, f"hydra.run.dir={out}", "eval.every=2"], cwd=tmp_path, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "finished" and result["steps"] == 3
    assert set(result["metrics"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert all(v is None or 0.0 <= v <= 1.0 for v in result["metrics"].values())
    assert result["axes"] == {"csq": "full", "proj": "diagonal", "ref": "query", "focal": True, "offset": True,
                              "model": "tiny", "num_queries": 6}
    assert result["params"]["total"] > 0 and result["wall_time_s"] > 0 and result["seed"] == 42
    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in lines if r["kind"] == "train"] == [1, 2, 3]
    assert [r["step"] for r in lines if r["kind"] == "eval"] == [2, 3]
    detections = json.loads((out / "detections.json").read_text())
    assert detections and {"image_id", "category_id", "bbox", "score"} <= set(detections[0])
    assert {d["category_id"] for d in detections} <= {1, 2, 3, 4, 5}  # the data set's own ids
    assert (out / "checkpoint.pt").is_file() and (out / ".hydra" / "config.yaml").is_file()
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), "one offline W&B run per job"
    assert result["wandb"]["mode"] == "offline"
    assert "AP" in proc.stderr + proc.stdout and str(out) in proc.stderr + proc.stdout

    # a relaunch into the finished folder does not train again
    again = run_cli([*TINY, f"hydra.run.dir={out}"], cwd=tmp_path, cache=tmp_path / "cache")
    assert again.returncode == 0
    assert json.loads((out / "result.json").read_text())["finished_at"] == result["finished_at"]


def test_runs_from_any_directory_and_prints_config(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ablate", "--cfg", "job", "csq=T", "proj=scalar"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "name: T" in proc.stdout and "name: scalar" in proc.stdout
    assert not Path(tmp_path, "outputs").exists()
