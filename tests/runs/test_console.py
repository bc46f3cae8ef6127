"""The start banner and the per-evaluation line."""

from __future__ import annotations

import math

import pytest

from ablate.config import compose, model_axes
from ablate.runs.console import banner, duration, eval_line, variant_words, wandb_where
from tests.tiny import TINY


def tiny_cfg(*extra: str):
    return compose([*TINY, *extra])


def test_eval_line_extrapolates_this_process_time_per_step():
    line = eval_line(500, 2500, {"AP": 0.1234, "AP50": 0.5}, elapsed_s=100.0, steps_done=500)
    assert line == "eval step 500/2,500  AP 0.123  AP50 0.500  elapsed 1m40s  ETA 6m40s"
    # resumed at step 400: 100 steps in 100 s, 2,000 to go
    assert eval_line(500, 2500, {"AP": 0.1, "AP50": 0.2}, elapsed_s=100.0, steps_done=100).endswith("ETA 33m20s")
    assert eval_line(2500, 2500, {"AP": 0.1, "AP50": 0.2}, elapsed_s=10.0, steps_done=0).endswith("ETA done")


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (59.6, "1m00s"), (3599, "59m59s"), (3 * 3600 + 420, "3h07m"),
                                               (math.nan, "?")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_wandb_where():
    assert wandb_where(None).startswith("off")
    assert wandb_where({"mode": "disabled", "id": None, "dir": None}).startswith("off")
    assert wandb_where({"mode": "online", "id": "x", "dir": "/d", "url": "https://wandb.ai/e/p/runs/x"}) == \
        "online: https://wandb.ai/e/p/runs/x"
    assert wandb_where({"mode": "offline", "id": "x", "dir": "/j/wandb"}) == \
        "offline run x in /j/wandb (upload later: wandb sync /j/wandb/offline-run-*)"


def test_variant_in_the_papers_words():
    cfg = tiny_cfg("csq=T", "proj=scalar", "focal=false")
    words = variant_words(cfg, model_axes(cfg))
    assert words.startswith("Conditional DETR (T): CSQ-T: p_q = T(f)·1")
    assert "proj scalar: T = λ·I" in words and "softmax CE" in words and "offsets from s" in words
    cfg = tiny_cfg("csq=detr", "offset=false")
    words = variant_words(cfg, model_axes(cfg))  # proj and ref do not exist in this model: not mentioned
    assert words.startswith("DETR (detr): DETR's cross-attention") and "proj" not in words and "ref " not in words


def test_banner_names_every_setting(tmp_path):
    cfg = tiny_cfg("train.max_steps=null", "train.epochs=2", "eval.every=5", "train.min_epoch_steps=0")

    class Data(list):
        category_ids = [1, 2, 3]

    result = {"axes": model_axes(cfg), "params": {"total": 12345, "trainable": 12000}, "world_size": 2,
              "output_dir": str(tmp_path), "wandb": {"mode": "offline", "id": "abc", "dir": str(tmp_path / "wandb")}}
    text = banner(cfg, result, device="cpu", threads=1, datasets=(Data(range(20)), Data(range(8))))
    lines = text.splitlines()
    assert lines[0].startswith("ablate: Conditional DETR (full): CSQ (the paper's): p_q = T(f)·p_s")
    assert "12,345 parameters (12,000 trainable), seed 42" in lines[1]
    assert lines[2] == "  device  cpu × 2 processes, 1 CPU thread"
    assert lines[3] == "  data    shapes: 20 training / 8 validation images, 3 classes"
    # 20 images over 2 ranks, 4 per rank per step: 2 steps an epoch, 2 epochs
    assert lines[4] == "  budget  4 steps × 8 images (2.0 epochs of 2 steps), evaluated every 5 steps and at the end"
    assert lines[5] == f"  output  {tmp_path}"
    assert lines[6].startswith("  W&B     offline run abc in ")
    # the same small data set with model=tiny's floor of 75 steps per schedule epoch
    cfg.train.min_epoch_steps = 75
    stretched = banner(cfg, result, device="cpu", threads=1, datasets=(Data(range(20)), Data(range(8))))
    assert stretched.splitlines()[4] == ("  budget  150 steps × 8 images (2 epochs of 75 steps: the data's 2-step epochs "
                                         "counted as train.min_epoch_steps), evaluated every 5 steps and at the end")
