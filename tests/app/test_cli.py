"""End to end: `python -m ablate` as a user runs it, in a subprocess, with a tiny budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ablate.runs.atomic import read_jsonl
from tests.tiny import TINY


def run_cli(args, cwd, cache):
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "ABLATE_CACHE": str(cache),
           **{var: str(Path(cwd) / "wandb_home" / var.lower()) for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR",
                                                                           "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")}}
    return subprocess.run([sys.executable, "-m", "ablate", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_single_run_writes_every_run_file(tmp_path):
    out = tmp_path / "run"
    proc = run_cli([*TINY, f"hydra.run.dir={out}", "eval.every=2", "logger.log_checkpoint=true"], cwd=tmp_path,
                   cache=tmp_path / "cache")
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
    check_console_and_job_log(proc.stdout + proc.stderr, out, result)
    check_per_class(result)
    check_offline_wandb_run(out, result)

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


def check_console_and_job_log(console: str, out: Path, result: dict) -> None:
    """The banner, one line per evaluation and the summary, on the console and in <job>/ablate.log."""
    log = (out / "ablate.log").read_text()
    assert not (out / "__main__.log").exists()
    for text in (console, log):
        assert "ablate: Conditional DETR (full): CSQ (the paper's): p_q = T(f)·p_s; proj diagonal" in text
        assert f"{result['params']['total']:,} parameters" in text and "device  cpu, 1 CPU thread" in text
        assert "data    shapes: 24 training / 6 validation images, 5 classes" in text
        assert "budget  3 steps × 4 images" in text and f"output  {out}" in text
        assert f"W&B     offline run {result['wandb']['id']} in {out / 'wandb'}" in text
        assert "eval step 2/3  AP " in text and "ETA " in text
        assert f"eval step 3/3  AP {result['metrics']['AP']:.3f}  AP50 {result['metrics']['AP50']:.3f}" in text
        assert f"results: {out}/result.json" in text
    assert "it/s" not in log  # no progress bars in the log


def check_per_class(result: dict) -> None:
    names = ["rectangle", "ellipse", "triangle", "cross", "ring"]
    rows = result["per_class"]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5] and [r["name"] for r in rows] == names
    assert all(v is None or 0.0 <= v <= 1.0 for r in rows for v in (r["AP"], r["AP50"]))


def check_offline_wandb_run(out: Path, result: dict) -> None:
    """What the dashboard will show, decoded from the offline run's .wandb file."""
    from tests.runs.wandb_records import run_file, summarize

    run = summarize(run_file(out))
    assert run["run"].job_type == "train" and run["exit_code"] == 0
    assert set(run["run"].tags) >= {"csq=full", "proj=diagonal", "ref=query", "focal=true", "offset=true"}
    assert run["config"]["csq"] == "full" and run["config"]["train.max_steps"] == 3
    assert run["metrics"]["val/*"].step_metric == "step" and run["metrics"]["val/AP"].summary.max
    assert set(run["summary"]["val/AP"]) == {"max", "last"}
    assert run["summary"]["val/AP"]["last"] == run["summary"]["final/AP"] == result["metrics"]["AP"]
    evals = [r for r in run["history"] if "val/AP" in r]
    assert [r["step"] for r in evals] == [2, 3]
    for row in evals:
        assert row["val/predictions/count"] == 4 and len(row["val/predictions/all_boxes"]) == 4
        assert row["val/per_class_AP/_type"] == "table-file" and row["val/per_class_AP/nrows"] == 5
    files = next(out.glob("wandb/offline-run-*/files"))
    gt = json.loads((files / evals[0]["val/predictions/all_boxes"][0]["ground_truth"]["path"]).read_text())
    assert gt["box_data"] and gt["class_labels"]["1"] == "rectangle"
    table = json.loads((files / evals[-1]["val/per_class_AP/path"]).read_text())
    assert table["columns"] == ["id", "name", "AP", "AP50"] and [r[1] for r in table["data"]][0] == "rectangle"
    assert "val/attention/path" in evals[-1] and "val/attention/path" not in evals[0]
    assert (files / evals[-1]["val/attention/path"]).stat().st_size > 1000
    assert "eval step 3/3" in (files / "output.log").read_text()  # console capture
    models = [a for a in run["artifacts"] if a.type == "model"]
    assert len(models) == 1 and json.loads(models[0].metadata)["step"] == 3
