"""Killed, preempted or crashed runs continue from their last checkpoint and end exactly where an unbroken run
ends; finished runs are never trained again; a broken checkpoint falls back to the previous one."""

from __future__ import annotations

import errno
import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import ablate.job as job_mod
from ablate.app import run_job
from ablate.config import compose
from ablate.engine.checkpoint import CheckpointMismatch
from ablate.runs.atomic import read_jsonl
from tests.app.conftest import ablate_cmd, checkpoint_step, read_result


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def assert_same_run(a: Path, b: Path) -> None:
    """Same metrics, detections, log lines and final weights, bit for bit."""
    ra, rb = read_result(a), read_result(b)
    assert ra["status"] == rb["status"] == "finished" and ra["steps"] == rb["steps"]
    assert ra["metrics"] == rb["metrics"]
    assert (a / "detections.json").read_text() == (b / "detections.json").read_text()
    assert without_times(read_jsonl(a / "metrics.jsonl")) == without_times(read_jsonl(b / "metrics.jsonl"))
    wa = torch.load(a / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(b / "checkpoint.pt", weights_only=True)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def wait_for_step(folder: Path, proc: subprocess.Popen, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before step {step}: {proc.communicate()[1][-2000:]}"
        if any(r.get("step", 0) >= step for r in read_jsonl(folder / "metrics.jsonl")):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no step {step} in {timeout} s")


def test_checkpoints_are_periodic(tmp_path, tiny_cfg, monkeypatch):
    saved: list[int] = []
    real = job_mod.save_checkpoint

    def spy(files, state):
        real(files, state)
        saved.append(checkpoint_step(files.checkpoint))  # on disk, complete, mid-run

    monkeypatch.setattr(job_mod, "save_checkpoint", spy)
    assert tiny_cfg().train.checkpoint_every == 120  # seconds, by default
    run_job(tiny_cfg(), tmp_path / "default")
    assert saved == [6]  # a 1-s run: only the final one
    saved.clear()
    run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path / "every_step")
    assert saved == [1, 2, 3, 4, 5, 6, 6]


def test_sigterm_then_sigkill_then_relaunch_ends_as_an_unbroken_run(tmp_path, tiny):
    args = tiny("train.max_steps=16", "train.checkpoint_every=0", "train.log_every=3", "eval.every=5")
    baseline = tmp_path / "baseline"
    run_job(compose(args), baseline)
    out = tmp_path / "run"
    cmd = ablate_cmd(*args, f"hydra.run.dir={out}")

    # SIGTERM (preemption): the step in flight finishes, a checkpoint is written, the status says so
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_step(out, proc, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    result = read_result(out)
    stopped = result["error"]["step"]
    assert result["status"] == "interrupted" and checkpoint_step(out / "checkpoint.pt") == stopped
    assert f"ablate: interrupted: stopped by signal 15 at step {stopped}; checkpoint written" in err

    # SIGKILL at an arbitrary moment of the relaunched run (maybe mid-checkpoint-write)
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_step(out, proc, stopped + 4)
    time.sleep(random.uniform(0, 0.3))
    proc.kill()
    proc.wait(timeout=60)
    status = read_result(out)["status"]
    assert status == "running", f"{status}: the run ended before the kill"  # killed: nothing recorded it
    killed_at = checkpoint_step(out / "checkpoint.pt") if (out / "checkpoint.pt").exists() else None

    # the same command again: resumes and finishes
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = read_result(out)
    assert result["resumed_from"] is not None and result["resumed_from"] > stopped
    if killed_at is not None:
        assert result["resumed_from"] == killed_at
    assert not list(out.glob(".*.tmp"))  # no temp file of a killed write is left behind
    assert_same_run(baseline, out)


def test_finished_job_is_never_rerun_or_overwritten(tmp_path, tiny_cfg, monkeypatch, caplog):
    run_job(tiny_cfg(), tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir() if p.is_file()}

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished job was trained again")

    monkeypatch.setattr(job_mod, "fit", must_not_train)
    assert run_job(tiny_cfg(), tmp_path)["status"] == "finished"
    assert "another config" not in caplog.text
    assert run_job(tiny_cfg("train.lr=0.002"), tmp_path)["status"] == "finished"  # not even with another config
    assert "with another config than this one; use a new output folder" in caplog.text
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir() if p.is_file()} == before


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny_cfg, explode_at, caplog):
    explode_at(3)  # crashes at step 3: checkpoint.pt holds step 3, checkpoint.prev.pt step 2
    with pytest.raises(RuntimeError, match="boom"):
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path / "run")
    explode_at(None)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # as a dying disk or a copy cut short would leave it

    result = run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path / "run")
    assert result["status"] == "finished" and result["resumed_from"] == 2
    assert "checkpoint.pt is unreadable" in caplog.text and "using the previous one" in caplog.text
    assert (tmp_path / "run" / "checkpoint.pt.corrupt").read_bytes() == data[: len(data) // 2]
    run_job(tiny_cfg(), tmp_path / "baseline")
    assert_same_run(tmp_path / "baseline", tmp_path / "run")


def test_a_resumed_job_counts_the_wall_time_of_its_earlier_attempts(tmp_path, tiny_cfg, explode_at):
    explode_at(3)
    with pytest.raises(RuntimeError, match="boom"):
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    explode_at(None)
    earlier = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["elapsed_s"]
    assert earlier > 0
    t0 = time.perf_counter()
    result = run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    this_attempt = time.perf_counter() - t0
    assert result["status"] == "finished" and result["resumed_from"] == 3
    assert earlier < result["wall_time_s"] <= earlier + this_attempt


def test_checkpoint_of_another_variant_is_refused_naming_the_keys(tmp_path, tiny_cfg, explode_at, cli):
    explode_at(3)
    with pytest.raises(RuntimeError, match="boom"):
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    explode_at(None)
    checkpoints = {p.name: p.read_bytes() for p in tmp_path.glob("checkpoint*")}

    with pytest.raises(CheckpointMismatch) as info:
        run_job(tiny_cfg("train.lr=0.002", "csq=C"), tmp_path)
    message = str(info.value)
    assert "train.lr: 0.0005 in the checkpoint, 0.002 now" in message
    assert "csq.name: 'full' in the checkpoint, 'C' now" in message
    result = read_result(tmp_path)  # why this job did not run, e.g. for a sweep's report
    assert result["status"] == "failed" and result["error"]["type"] == "CheckpointMismatch"
    assert result["error"]["message"] == message and result["error"]["step"] is None
    # untouched, for the config they belong to: that one still resumes from them
    assert {p.name: p.read_bytes() for p in tmp_path.glob("checkpoint*")} == checkpoints
    assert run_job(tiny_cfg(), tmp_path)["resumed_from"] == 3


    explode_at(3)
    with pytest.raises(RuntimeError, match="boom"):
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path / "cli")
    code, err = cli("train.lr=0.002", f"hydra.run.dir={tmp_path / 'cli'}")
    assert code == 2 and "ablate: the checkpoint in this output folder is of another variant: train.lr" in err
    assert "Traceback" not in err


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, tiny_cfg, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def disk_fills_up(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 3:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"\0" * 4096)  # part of it made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(OSError) as info:
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    assert info.value.errno == errno.ENOSPC
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["error"]["step"] == 4
    assert "No space left on device (while writing" in result["error"]["message"]
    assert "checkpoint.pt" in result["error"]["message"]
    assert checkpoint_step(tmp_path / "checkpoint.pt") == 3 and checkpoint_step(tmp_path / "checkpoint.prev.pt") == 2
    assert not list(tmp_path.glob(".*.tmp"))

    monkeypatch.setattr(torch, "save", real_save)  # space freed: the same job resumes
    result = run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    assert result["status"] == "finished" and result["resumed_from"] == 3


def test_resume_trims_log_lines_the_relaunch_repeats(tmp_path, tiny_cfg, explode_at):
    explode_at(5)
    with pytest.raises(RuntimeError):
        run_job(tiny_cfg("train.log_every=1", "eval.every=2"), tmp_path)
    explode_at(None)
    # no checkpoint yet (the period is 120 s): the relaunch starts over, and must not repeat the lines
    assert not (tmp_path / "checkpoint.pt").exists()
    run_job(tiny_cfg("train.log_every=1", "eval.every=2"), tmp_path)
    steps = [(r["kind"], r["step"]) for r in read_jsonl(tmp_path / "metrics.jsonl")]
    assert len(steps) == len(set(steps)), json.dumps(steps)
