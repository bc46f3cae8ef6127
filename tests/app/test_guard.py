"""A finished job's folder is immutable: a launch of another config, or a second launch while the job runs,
stops before Hydra writes anything, and every file stays byte-identical (src/ablate/runs/guard.py)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from tests.app.conftest import read_result


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(tmp_path, cli) -> Path:
    out = tmp_path / "run"
    code, err = cli("train.max_steps=1", f"hydra.run.dir={out}")
    assert code == 0, err[-2000:]
    assert read_result(out)["status"] == "finished" and (out / ".hydra" / "config.yaml").is_file()
    return out


def test_relaunch_with_another_config_refuses_and_touches_nothing(finished_run, cli):
    before = snapshot(finished_run)
    code, err = cli("train.max_steps=1", "train.seed=7", "model.nheads=2", f"hydra.run.dir={finished_run}")
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("ablate:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert f"{finished_run} holds a finished run of another config" in lines[0]
    assert "model.nheads: 4 → 2" in lines[0] and "train.seed: 42 → 7" in lines[0]
    assert "run this config in a new hydra.run.dir" in lines[0]
    assert snapshot(finished_run) == before


def test_relaunch_of_the_same_config_has_nothing_to_do_and_touches_nothing(finished_run, cli, capsys):
    before = snapshot(finished_run)
    # logger and eval settings do not define the model: still the same finished run
    code, err = cli("train.max_steps=1", "eval.batch_size=3", f"hydra.run.dir={finished_run}")
    assert code == 0 and "ablate:" not in err
    assert snapshot(finished_run) == before


def test_launch_into_a_running_job_refuses_and_touches_nothing(finished_run, cli):
    result = read_result(finished_run)
    (finished_run / "result.json").write_text(json.dumps({**result, "status": "running"}))
    before = snapshot(finished_run)
    with open(finished_run / ".lock", "a") as held:  # what the running job's process holds
        fcntl.flock(held, fcntl.LOCK_EX)
        code, err = cli("train.max_steps=1", f"hydra.run.dir={finished_run}")
    assert code == 1 and "Traceback" not in err
    assert f"ablate: {finished_run} is being run by another process right now" in err
    assert snapshot(finished_run) == before


def test_sweep_relaunch_with_another_config_refuses_and_touches_nothing(tmp_path, cli):
    sweep = tmp_path / "sweep"
    args = ["hydra.mode=MULTIRUN", "train.max_steps=1", "train.seed=0,1", f"hydra.sweep.dir={sweep}"]
    code, err = cli(*args)
    assert code == 0, err[-2000:]
    assert sorted(read_result(p.parent)["status"] for p in sweep.glob("*/result.json")) == ["finished"] * 2
    before = snapshot(sweep)
    # data.num_workers stays out of folder names, but changes the model: same folders, another config
    code, err = cli(*args, "data.num_workers=1")
    assert code == 2 and "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("ablate:"))
    assert "(job #0 of the sweep) holds a finished run of another config (data.num_workers: 0 → 1)" in line
    assert "run this config in a new hydra.sweep.dir" in line
    assert snapshot(sweep) == before


def test_relaunch_of_another_config_onto_an_unfinished_runs_checkpoint_touches_nothing(tmp_path, cli, explode_at):
    out = tmp_path / "run"
    explode_at(3)
    with pytest.raises(RuntimeError, match="boom"):  # a bug, not an input error: the traceback is shown
        cli("train.checkpoint_every=0", f"hydra.run.dir={out}")
    explode_at(None)
    assert read_result(out)["status"] == "failed" and (out / "checkpoint.pt").is_file()
    before = snapshot(out)
    code, err = cli("train.checkpoint_every=0", "train.lr=0.002", f"hydra.run.dir={out}")
    assert code == 2 and "Traceback" not in err
    assert "holds the checkpoint of an unfinished run of another config (train.lr: 0.0005 → 0.002)" in err
    assert snapshot(out) == before  # result.json is not rewritten as failed with the new axes
    code, err = cli("train.checkpoint_every=0", f"hydra.run.dir={out}")  # its own config resumes it
    assert code == 0, err[-2000:]
    assert read_result(out)["status"] == "finished" and read_result(out)["resumed_from"] == 3
