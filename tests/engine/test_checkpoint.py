"""Checkpoint files: atomic rotation, safe loading (nothing in the file runs), fallback, config checks."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ablate.engine.checkpoint import (
    CheckpointMismatch,
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    trim_metrics,
)
from ablate.runs.atomic import read_jsonl
from ablate.runs.files import RunFiles

SRC = Path(__file__).resolve().parents[2] / "src"


def state(step: int) -> dict:
    return {"model": {"w": torch.full((3,), float(step))}, "optimizer": {}, "scheduler": {}, "step": step,
            "rng": rng_state(), "effective_config": {"train": {"lr": 1e-4}}, "history": []}


class RunsCode:
    """Unpickling this runs ``code`` (what a hostile checkpoint would do)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def test_rotation_keeps_the_previous_checkpoint_and_cleans_killed_writes(tmp_path):
    files = RunFiles(tmp_path)
    stale = tmp_path / ".checkpoint.pt.deadbeef.tmp"  # left by a SIGKILL mid-write
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(files, state(1))
    save_checkpoint(files, state(2))
    assert load_checkpoint(files)["step"] == 2
    assert torch.load(files.checkpoint_prev, weights_only=True)["step"] == 1
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp"))
    files.checkpoint.unlink()  # killed between the rotation and the rename
    assert load_checkpoint(files)["step"] == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign"])
def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog, damage):
    files = RunFiles(tmp_path)
    save_checkpoint(files, state(1))
    save_checkpoint(files, state(2))
    data = files.checkpoint.read_bytes()
    if damage == "truncate":
        files.checkpoint.write_bytes(data[: len(data) - 100])
    elif damage == "garbage":
        files.checkpoint.write_bytes(data[:200] + b"\0" * (len(data) - 200))
    elif damage == "empty":
        files.checkpoint.write_bytes(b"")
    else:  # loads fine, but is not one of ours (e.g. an authors' checkpoint copied in by mistake)
        torch.save({"model": {}}, files.checkpoint)
    with caplog.at_level(logging.WARNING):
        ckpt = load_checkpoint(files)
    assert ckpt["step"] == 1
    assert re.search(r"checkpoint .*checkpoint\.pt is unreadable .*; using the previous one", caplog.text)
    # moved aside, so the next save cannot rotate it over the good previous checkpoint
    assert not files.checkpoint.exists() and (tmp_path / "checkpoint.pt.corrupt").exists()
    save_checkpoint(files, state(3))
    assert torch.load(files.checkpoint_prev, weights_only=True)["step"] == 1


def test_nothing_in_a_checkpoint_file_is_executed(tmp_path, caplog):
    marker = tmp_path / "pwned"
    payload = {**state(5), "history": [RunsCode(f"open({str(marker)!r}, 'w').write('x')")]}
    files = RunFiles(tmp_path)
    torch.save(payload, files.checkpoint)
    torch.save(payload, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.exists()
    marker.unlink()

    assert load_checkpoint(files) is None  # refused (no previous one), and nothing ran
    assert not marker.exists()
    assert "unreadable" in caplog.text and "starting from scratch" in caplog.text
    # and every torch.load in the package is a safe one
    loads = [line for p in SRC.rglob("*.py") for line in p.read_text().splitlines() if "torch.load(" in line]
    assert loads and all("weights_only=True" in line for line in loads), loads


def test_mmap_load_reads_the_config_cheaply(tmp_path):
    files = RunFiles(tmp_path)
    save_checkpoint(files, state(4))
    ckpt = load_checkpoint(files, mmap=True)
    assert ckpt["effective_config"] == {"train": {"lr": 1e-4}} and torch.equal(ckpt["model"]["w"], torch.full((3,), 4.0))


def test_rng_state_round_trips_through_a_safe_load(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    files = RunFiles(tmp_path)
    save_checkpoint(files, state(1))
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(files)["rng"])
    got = (random.random(), np.random.rand(), torch.rand(2))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_another_variant_is_named_key_by_key():
    saved = {"csq": {"name": "full"}, "train": {"lr": 1e-4, "seed": 1}, "model": {"hidden_dim": 256}}
    now = {"csq": {"name": "C"}, "train": {"lr": 1e-4, "seed": 2}, "model": {}}
    with pytest.raises(CheckpointMismatch) as info:
        check_compatible(saved, now)
    message = str(info.value)
    assert "csq.name: 'full' in the checkpoint, 'C' now" in message
    assert "train.seed: 1 in the checkpoint, 2 now" in message
    assert "model.hidden_dim: 256 in the checkpoint, '<absent>' now" in message
    assert "train.lr" not in message
    check_compatible(saved, saved)  # same config: no error


def test_trim_metrics_keeps_what_the_checkpoint_covers(tmp_path):
    files = RunFiles(tmp_path)
    for step in range(1, 7):
        files.log_metrics({"kind": "train", "step": step, "loss": float(step)})
        if step % 2 == 0:
            files.log_metrics({"kind": "eval", "step": step, "AP": 0.1})
    with open(files.metrics, "a") as fh:
        fh.write('{"kind": "train", "st')  # a line cut by SIGKILL
    trim_metrics(files, 4, {2})  # checkpoint at step 4, taken before the evaluation at step 4 was recorded
    assert [(r["kind"], r["step"]) for r in read_jsonl(files.metrics)] == [
        ("train", 1), ("train", 2), ("eval", 2), ("train", 3), ("train", 4)]
