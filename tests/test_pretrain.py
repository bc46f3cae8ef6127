"""The tiny backbone's pretraining (``python -m ablate.pretrain``) and loading its output as a frozen backbone."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ablate import pretrain
from ablate.models.backbone import BackboneWeightsError, TinyBackbone, build_backbone, weights_path


def test_windows_have_the_shape_labels_and_seed_they_claim():
    windows, labels = pretrain.crop_windows(20)
    assert windows.dtype == torch.uint8 and windows.shape[1:] == (3, 64, 64)
    assert len(windows) == len(labels) >= 20  # at least one object per image
    assert set(labels.tolist()) <= set(range(len(pretrain.CATEGORIES)))
    other, _ = pretrain.crop_windows(20, seed=pretrain.DATA_SEED + 1)
    assert not torch.equal(windows[: len(other)], other[: len(windows)])


def test_a_short_pretraining_learns_and_its_file_loads_as_a_frozen_backbone(tmp_path):
    torch.manual_seed(0)
    state, summary = pretrain.pretrain(steps=25, num_images=60, batch_size=32, progress=False)
    assert summary["final_loss"] < summary["first_loss"]
    path = tmp_path / "bb.pt"
    torch.save(state, path)
    backbone = TinyBackbone(pretrain.WIDTHS, weights=str(path))
    for key, value in state.items():
        assert torch.equal(backbone.state_dict()[key], value), key
    # frozen statistics: a training-mode forward leaves them (and the BN affine) untouched
    norm = backbone.norms()[0]
    before = norm.running_mean.clone()
    backbone.train()
    backbone(torch.randn(2, 3, 64, 64) * 3 + 1)
    assert torch.equal(norm.running_mean, before) and not norm.training
    assert not any(p.requires_grad for n in backbone.norms() for p in n.parameters())
    assert all(p.requires_grad for m in backbone.body if isinstance(m, torch.nn.Conv2d) for p in m.parameters())


def test_a_from_scratch_tiny_backbone_still_learns_its_statistics():
    backbone = TinyBackbone(pretrain.WIDTHS)
    norm = backbone.norms()[0]
    backbone.train()
    backbone(torch.randn(2, 3, 64, 64) + 1)
    assert norm.training and not torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))


def test_the_shipped_weights_are_what_their_record_says():
    path = weights_path("tiny_shapes")
    assert path == pretrain.SHIPPED and path.is_file()
    record = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert record["held_out_accuracy"] > 0.8 > record["chance"]
    assert record["command"].startswith("python -m ablate.pretrain")
    build_backbone("tiny", widths=pretrain.WIDTHS, dilation=False, weights="tiny_shapes")


def test_a_wrong_file_is_named(tmp_path):
    with pytest.raises(BackboneWeightsError, match="no such file"):
        TinyBackbone([8, 16], weights=str(tmp_path / "missing.pt"))
    path = tmp_path / "other.pt"
    torch.save(TinyBackbone([8, 16]).state_dict(), path)
    with pytest.raises(BackboneWeightsError, match=r"not a tiny backbone of widths \[16, 32, 64, 128\]"):
        TinyBackbone(pretrain.WIDTHS, weights=str(path))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(BackboneWeightsError, match="garbage.pt is not a tiny backbone"):
        TinyBackbone(pretrain.WIDTHS, weights=str(garbage))


def test_a_missing_weights_file_is_one_ablate_line_exit_2_and_nothing_written(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ablate", "model.backbone.weights=nowhere.pt", "logger=none",
                           f"hydra.run.dir={out}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("ablate: config error: model.backbone.weights=nowhere.pt")
    assert not out.exists()  # a single run is refused before Hydra creates its folder (runs/guard.py)


def test_bad_arguments_exit_2_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "w.pt"
    assert pretrain.main(["--out", str(out), "--steps", "0"]) == 2
    assert capsys.readouterr().err.startswith("ablate: --steps")
    assert not out.exists()
