"""Evaluation never changes training: the weights after N steps are the same with or without mid-run
evaluations, and the same for every key the dedup key leaves out (``_KEY_EXCLUDE``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ablate.app import run_job
from ablate.config import _KEY_EXCLUDE, compose, config_key

# One base run, each excluded key changed to another value that runs on a CPU machine.
CHANGES = {
    "logger": ["logger=none"],  # the base is logger=none; W&B offline is tested below
    "name": ["name=other"],
    "eval.every": ["eval.every=2"],
    "eval.backend": ["eval.backend=faster_coco_eval"],
    "eval.batch_size": ["eval.batch_size=3"],
    "train.log_every": ["train.log_every=1"],
    "train.checkpoint_every": ["train.checkpoint_every=0"],
    "train.resume": ["train.resume=false"],
    "train.device": ["train.device=cpu"],
}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different[:5]}"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, data_root_module) -> Path:
    out = tmp_path_factory.mktemp("base")
    run_job(compose(data_root_module()), out)
    return out


@pytest.fixture(scope="module")
def data_root_module(tmp_path_factory):
    from tests.app.conftest import TINY

    root = tmp_path_factory.mktemp("shapes")
    return lambda *extra: [*TINY, f"data.root={root}", "train.device=auto", *extra]


def test_every_excluded_key_is_audited():
    assert set(_KEY_EXCLUDE) == set(CHANGES)


@pytest.mark.parametrize("change", ["train.num_threads=2", "data.num_workers=1"])
def test_keys_that_change_the_weights_are_in_the_key(data_root_module, change):
    # both were once excluded; training with them changed gives other weights (threads: rounding of CPU
    # reductions; workers: augmentations drawn from the workers' RNG), so they are part of the model's key
    assert config_key(compose(data_root_module(change))) != config_key(compose(data_root_module()))


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_an_excluded_key_leaves_the_trained_weights_identical(tmp_path, baseline, data_root_module, key):
    if key == "eval.backend":
        pytest.importorskip("faster_coco_eval")
    cfg = compose(data_root_module(*CHANGES[key]))
    assert config_key(cfg) == config_key(compose(data_root_module()))
    run_job(cfg, tmp_path)
    assert_same_weights(baseline, tmp_path)


def test_mid_run_evaluation_does_not_change_the_weights(tmp_path, baseline, data_root_module):
    # evaluating after every step: the validation transforms draw from the RNG the training augments with
    result = run_job(compose(data_root_module("eval.every=1")), tmp_path)
    assert result["status"] == "finished"
    assert_same_weights(baseline, tmp_path)
