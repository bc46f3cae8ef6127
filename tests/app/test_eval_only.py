"""Evaluate and reuse: ``eval.only=true model.init_from=SRC`` evaluates a job folder, a checkpoint file or a
released checkpoint without training, and reproduces the job's own final metrics; a checkpoint that does not fit
names the file, the variant it was trained as and the keys, grouped by module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ablate.app import run_job
from ablate.runs.atomic import read_jsonl
from tests.app.conftest import read_result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """One finished tiny job (csq=T proj=scalar, as the README's example) whose checkpoint the tests reuse."""
    from ablate.config import compose
    from tests.app.conftest import TINY

    out = tmp_path_factory.mktemp("trained")
    run_job(compose([*TINY, f"data.root={data_root}", "csq=T", "proj=scalar"]), out)
    return out


@pytest.mark.parametrize("source", ["folder", "checkpoint"])
def test_eval_only_reproduces_the_jobs_final_metrics(tmp_path, tiny_cfg, trained, source):
    src = trained if source == "folder" else trained / "checkpoint.pt"
    weights_before = torch.load(trained / "checkpoint.pt", weights_only=True)["model"]
    out = tmp_path / "eval"
    result = run_job(tiny_cfg("csq=T", "proj=scalar", "eval.only=true", f"model.init_from={src}"), out)
    job = read_result(trained)
    assert result["status"] == "finished" and result["job_type"] == "eval"
    assert read_result(out)["metrics"] == job["metrics"] and result["steps"] == 0
    assert (out / "detections.json").read_text() == (trained / "detections.json").read_text()
    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["kind"] for r in lines] == ["eval"]  # no training line: no optimizer step was taken
    assert not (out / "checkpoint.pt").exists()  # and no training checkpoint written
    assert result["init_from"]["path"] == str(trained / "checkpoint.pt") and result["init_from"]["step"] == job["steps"]
    # the source is read, never written
    after = torch.load(trained / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(weights_before[k], after[k]) for k in after)


def test_init_from_fine_tunes_from_a_jobs_weights(tmp_path, tiny_cfg, trained):
    """Without eval.only the loaded weights are the starting point: the first training loss is the trained
    model's, far below a fresh model's."""
    fresh = run_job(tiny_cfg("csq=T", "proj=scalar", "train.max_steps=1", "train.log_every=1"), tmp_path / "a")
    tuned = run_job(tiny_cfg("csq=T", "proj=scalar", "train.max_steps=1", "train.log_every=1",
                             f"model.init_from={trained}"), tmp_path / "b")
    assert fresh["status"] == tuned["status"] == "finished"
    loss = [read_jsonl(tmp_path / x / "metrics.jsonl")[0]["loss"] for x in ("a", "b")]
    assert loss[1] < loss[0]


def test_checkpoint_of_another_variant_names_file_variant_and_modules(tmp_path, cli, trained):
    code, err = cli("csq=full", "proj=full", "eval.only=true", f"model.init_from={trained}",
                    f"hydra.run.dir={tmp_path / 'x'}")
    line = err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("ablate: model.init_from: ") and "Traceback" not in err
    assert str(trained / "checkpoint.pt") in err and "trained as csq=T proj=scalar" in err
    assert "transformer.decoder (" in err and "shape:" in err and "config error" not in err


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_unreadable_init_from_is_one_line(tmp_path, cli, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    code, err = cli("eval.only=true", f"model.init_from={bad}", f"hydra.run.dir={tmp_path / 'x'}")
    assert code == 2 and err.strip().splitlines()[-1].startswith("ablate: model.init_from=") and str(bad) in err
    assert "weights_only=False" not in err


def test_hostile_pickle_is_refused_not_run(tmp_path, cli):
    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    bad = tmp_path / "hostile.pt"
    torch.save({"model": Boom()}, bad)
    code, err = cli("eval.only=true", f"model.init_from={bad}", f"hydra.run.dir={tmp_path / 'x'}")
    assert code == 2 and not (tmp_path / "pwned").exists() and "weights_only=False" not in err


def test_eval_only_needs_init_from(tmp_path, cli):
    code, err = cli("eval.only=true", f"hydra.run.dir={tmp_path / 'x'}")
    assert code == 2 and "eval.only=true evaluates model.init_from" in err


def test_missing_source_is_named(tmp_path, cli):
    code, err = cli("eval.only=true", f"model.init_from={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'x'}")
    assert code == 2 and f"model.init_from: no such file {tmp_path / 'nope'}" in err
