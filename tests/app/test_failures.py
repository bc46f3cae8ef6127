"""A job that crashes or diverges records why, marks its W&B run failed, and a multirun goes on without it."""

from __future__ import annotations

import re

import pytest
import torch

import ablate.app as app_mod
import ablate.job as job_mod
from ablate.app import run_job
from ablate.engine.train import Diverged
from ablate.runs.logger import NullLogger
from tests.app.conftest import checkpoint_step, read_result, run_cli


class SpyLogger(NullLogger):
    def __init__(self) -> None:
        self.exit_codes: list[int] = []

    def finish(self, exit_code: int = 0) -> None:
        self.exit_codes.append(exit_code)


@pytest.fixture
def spy_logger(monkeypatch: pytest.MonkeyPatch) -> SpyLogger:
    spy = SpyLogger()
    monkeypatch.setattr(app_mod, "build_logger", lambda *a, **k: spy)
    return spy


def test_crash_mid_training_is_recorded_with_step_and_traceback(tmp_path, tiny_cfg, explode_at, spy_logger):
    explode_at(2)
    with pytest.raises(RuntimeError, match="boom"):
        run_job(tiny_cfg("train.checkpoint_every=0"), tmp_path)
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["finished_at"]
    error = result["error"]
    assert error["message"] == "boom" and error["type"] == "RuntimeError" and error["step"] == 2
    assert "Traceback" in error["traceback"] and "forward" in error["traceback"]
    assert spy_logger.exit_codes == [1]  # the W&B run is marked failed, not finished
    assert checkpoint_step(tmp_path / "checkpoint.pt") == 2  # what was trained before the crash is kept
    assert not (tmp_path / "detections.json").exists()


def test_crash_in_the_final_evaluation_is_recorded(tmp_path, tiny_cfg, monkeypatch, spy_logger):
    def broken(*args, **kwargs):
        raise MemoryError("no memory left for the evaluation")

    monkeypatch.setattr(job_mod, "evaluate", broken)
    with pytest.raises(MemoryError):
        run_job(tiny_cfg(), tmp_path)
    result = read_result(tmp_path)
    assert result["status"] == "failed" and result["error"]["type"] == "MemoryError"
    assert result["error"]["step"] == 6 and result["metrics"] == {}
    assert spy_logger.exit_codes == [1]
    assert checkpoint_step(tmp_path / "checkpoint.pt") == 6  # the final checkpoint precedes the evaluation


def test_absurd_learning_rate_diverges_and_stops_at_once(tmp_path, tiny_cfg, cli, spy_logger):
    # no clipping: lr=1e30 blows the weights up after the first step
    with pytest.raises(Diverged) as info:
        run_job(tiny_cfg("train.lr=1e30", "train.clip_max_norm=0", "train.max_steps=50"), tmp_path / "api")
    step = info.value.step
    assert str(info.value) == f"loss diverged at step {step}" and step < 5
    result = read_result(tmp_path / "api")
    assert result["status"] == "failed" and result["error"]["type"] == "Diverged"
    assert result["error"]["message"] == f"loss diverged at step {step}" and result["error"]["step"] == step
    assert spy_logger.exit_codes == [1]

    code, err = cli("train.lr=1e30", "train.clip_max_norm=0", "train.max_steps=50", f"hydra.run.dir={tmp_path / 'cli'}")
    assert code == 1
    assert re.search(r"^ablate: failed: loss diverged at step \d+$", err, re.M), err
    assert "Traceback" not in err


def test_non_finite_gradient_stops_the_run_even_without_clipping(tmp_path, tiny_cfg, monkeypatch):
    real = job_mod.build_criterion

    def criterion_with_nan_gradient(*args, **kwargs):
        inner = real(*args, **kwargs)

        def loss(outputs, targets, num_boxes):
            losses = inner(outputs, targets, num_boxes)
            zero = (outputs["pred_boxes"] * 0).sum()  # sqrt'(0) = inf, times 0: NaN gradients, finite loss
            return {**losses, "loss": losses["loss"] + zero.sqrt()}

        module = torch.nn.Module()
        module.forward = loss
        return module

    monkeypatch.setattr(job_mod, "build_criterion", criterion_with_nan_gradient)
    with pytest.raises(Diverged, match=r"^gradient diverged at step 0$"):
        run_job(tiny_cfg("train.clip_max_norm=0"), tmp_path)
    assert read_result(tmp_path)["error"]["step"] == 0


def test_multirun_runs_every_job_and_exits_non_zero_when_one_fails(tmp_path, tiny):
    sweep = tmp_path / "sweep"
    # only job 0 has an impossible value; job 1 must still train to the end
    proc = run_cli(["-m", *tiny("train.max_steps=2"), "train.batch_size=0,4", f"hydra.sweep.dir={sweep}"],
                   cwd=tmp_path)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "job failed: train.batch_size=0 must be ≥ 1" in output and "\nablate: " in output
    results = {p.parent.name.split("_")[0]: read_result(p.parent) for p in sweep.glob("*/result.json")}
    assert results["0"]["status"] == "failed"
    assert results["0"]["error"]["message"] == "train.batch_size=0 must be ≥ 1"
    assert results["0"]["axes"]["csq"] == "full"  # the report can place the failed job among its variants
    assert results["1"]["status"] == "finished" and results["1"]["steps"] == 2


def test_a_job_already_running_in_the_folder_is_not_started_twice(tmp_path):
    """A second process reaching a folder whose job is running (lock held) stops before writing anything."""
    import fcntl

    from ablate import compose
    from tests.tiny import TINY

    out = tmp_path / "job"
    out.mkdir()
    (out / "result.json").write_text('{"status": "running"}')
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(OSError, match="being run by another process"):
            run_job(compose([*TINY, "logger=none", f"data.root={tmp_path / 'cache'}"]), out)
    assert (out / "result.json").read_text() == '{"status": "running"}'
    assert not (out / "metrics.jsonl").exists()
