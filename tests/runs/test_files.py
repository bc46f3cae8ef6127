"""RunFiles: the job-folder contract of docs/run_files.md."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import torch

from ablate.runs import files as files_mod
from ablate.runs.files import RunFiles, git_commit, utc_now


def test_paths(tmp_path):
    rf = RunFiles(tmp_path)
    names = {k: getattr(rf, k).name for k in ("result", "metrics", "detections", "checkpoint", "checkpoint_prev")}
    assert names == {"result": "result.json", "metrics": "metrics.jsonl", "detections": "detections.json",
                     "checkpoint": "checkpoint.pt", "checkpoint_prev": "checkpoint.prev.pt"}
    assert rf.result.parent == tmp_path and rf.output_dir.is_absolute()


def test_result_read_write_update(tmp_path, caplog):
    rf = RunFiles(tmp_path)
    assert rf.read_result() is None
    rf.write_result({"status": "running", "metrics": {}, "seed": 0})
    new = rf.update_result(status="finished", metrics={"AP": 0.41, "APs": float("nan")})
    assert new["status"] == "finished" and new["seed"] == 0
    # Untouched keys survive; NaN is written as null (strict JSON).
    assert rf.read_result() == {"status": "finished", "metrics": {"AP": 0.41, "APs": None}, "seed": 0}

    rf.result.write_text('{"status": "runn')  # e.g. a foreign non-atomic writer
    with caplog.at_level(logging.WARNING):
        assert rf.read_result() is None
    assert "corrupt" in caplog.text
    assert rf.update_result(status="failed") == {"status": "failed"}


def test_metrics_and_detections(tmp_path):
    rf = RunFiles(tmp_path)
    rf.log_metrics({"kind": "train", "step": 100, "loss": 1.0})
    rf.log_metrics({"kind": "eval", "step": 100, "AP": 0.1})
    with pytest.raises(ValueError, match="kind"):
        rf.log_metrics({"step": 1})
    assert [r["kind"] for r in rf.read_metrics()] == ["train", "eval"]
    assert rf.read_metrics("eval") == [{"kind": "eval", "step": 100, "AP": 0.1}]

    dets = [{"image_id": 1, "category_id": 7, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}]
    rf.write_detections(dets)
    assert rf.detections.read_text().count("\n") == 1  # compact: big files stay small
    assert json.loads(rf.detections.read_text()) == dets


def test_checkpoint_rotation(tmp_path):
    rf = RunFiles(tmp_path)
    assert rf.latest_checkpoint() is None
    rf.save_checkpoint({"step": 1})
    rf.save_checkpoint({"step": 2})
    assert torch.load(rf.checkpoint)["step"] == 2
    assert torch.load(rf.checkpoint_prev)["step"] == 1
    rf.checkpoint.unlink()  # as if killed between the rotation and the rename
    assert rf.latest_checkpoint() == rf.checkpoint_prev


def test_utc_now():
    stamp = utc_now()
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0) and stamp.endswith("+00:00")
    assert abs(datetime.now(timezone.utc) - parsed) < timedelta(seconds=5)


def test_git_commit_never_raises(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs["cwd"]))
        return subprocess.CompletedProcess(cmd, 0, stdout="abc123\n", stderr="")

    monkeypatch.setattr(files_mod.subprocess, "run", fake_run)
    assert git_commit(tmp_path) is None and calls == []  # not a checkout: git is not even asked
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    assert git_commit(tmp_path) == "abc123"
    assert calls == [(["git", "rev-parse", "HEAD"], tmp_path)]

    def no_git(cmd, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(files_mod.subprocess, "run", no_git)
    assert git_commit(tmp_path) is None
    monkeypatch.setattr(files_mod.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 128, "", "fatal"))
    assert git_commit(tmp_path) is None
