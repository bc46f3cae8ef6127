"""``ablate.from_run`` and ``Predictor.predict`` on a tiny job trained in the session (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import ablate
from ablate.data import generate_shapes
from ablate.data.shapes import CATEGORIES
from ablate.inference import Predictor, RunError, from_run

NAMES = {i + 1: name for i, name in enumerate(CATEGORIES)}  # the shapes set's own ids and names


def val_images(run: Path) -> list[tuple[int, Path]]:
    """(image id, file) of the run's validation images, as its detections.json numbers them."""
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    paths = generate_shapes(Path(cfg.data.root), cfg.data.shapes)  # the cached set the run trained on
    images = json.loads(paths.val_ann.read_text())["images"]
    return [(im["id"], paths.val_images / im["file_name"]) for im in images]


def as_rows(det: dict) -> list[tuple[int, float, list[float]]]:
    return [(int(label), float(score), box) for label, score, box in
            zip(det["labels"], det["scores"], det["boxes"].tolist())]


def assert_same_detections(a: list[tuple], b: list[tuple], *, box_tol: float, score_tol: float) -> None:
    """Every detection of a has its own partner in b: same category, scores and boxes within tolerance
    (matched as sets: near-equal scores may come in another order)."""
    assert len(a) == len(b) > 0
    left = list(b)
    for label, score, box in a:
        match = next((j for j, (lb, sc, bx) in enumerate(left) if lb == label and abs(sc - score) <= score_tol
                      and np.allclose(bx, box, atol=box_tol)), None)
        assert match is not None, f"no partner for {(label, score, box)}"
        left.pop(match)


def test_from_run_is_the_trained_model_in_eval_mode(trained_run: Path) -> None:
    model = ablate.from_run(trained_run)
    assert isinstance(model, Predictor) and not model.training and not model.model.training
    saved = torch.load(trained_run / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    own = model.model.state_dict()
    assert own.keys() == saved.keys() and all(torch.equal(own[k], saved[k]) for k in saved)
    assert model.cfg == OmegaConf.merge(model.cfg, OmegaConf.load(trained_run / ".hydra" / "config.yaml"))
    assert model.cfg.model.hidden_dim == 32 and model.categories == NAMES
    # a result.json or checkpoint.pt path names the same job
    assert from_run(trained_run / "result.json").categories == NAMES
    assert from_run(trained_run / "checkpoint.pt").cfg.model.hidden_dim == 32


def test_predict_reproduces_the_runs_detections(trained_run: Path) -> None:
    """Same preprocessing, post-processing and ids as the run's own evaluation: detections.json, image by image."""
    model = from_run(trained_run)
    saved = json.loads((trained_run / "detections.json").read_text())
    for image_id, path in val_images(trained_run):
        with Image.open(path) as img:
            det = model.predict(img, threshold=0.0)
        ref = [(d["category_id"], d["score"], [d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2],
                                               d["bbox"][1] + d["bbox"][3]])
               for d in saved if d["image_id"] == image_id]
        assert_same_detections(as_rows(det), ref, box_tol=1e-3, score_tol=1e-5)
        assert det["names"] == [NAMES[int(i)] for i in det["labels"]]


def test_pil_uint8_and_float_inputs_of_any_size_agree(trained_run: Path) -> None:
    model = from_run(trained_run)
    _, path = val_images(trained_run)[0]
    with Image.open(path) as img:
        pil = img.convert("RGB").resize((150, 100), Image.BILINEAR)  # another size and aspect than training
    u8 = torch.from_numpy(np.array(pil)).permute(2, 0, 1)
    single = model.predict(pil, threshold=0.0)
    assert isinstance(single, dict)
    as_pil, as_u8, as_float = model.predict([pil, u8, u8.float() / 255], threshold=0.0)
    for key in ("boxes", "scores", "labels"):
        assert torch.equal(single[key], as_pil[key]) and torch.equal(as_pil[key], as_u8[key])
    assert_same_detections(as_rows(as_u8), as_rows(as_float), box_tol=1e-3, score_tol=1e-5)
    assert set(as_pil["labels"].tolist()) <= set(NAMES)
    # a (B, 3, H, W) tensor is B images
    batch = model.predict(torch.stack([u8, u8]), threshold=0.0)
    assert len(batch) == 2 and torch.equal(batch[1]["boxes"], as_u8["boxes"])


def test_boxes_are_in_the_pixels_of_the_image_given(trained_run: Path) -> None:
    """An image twice the size (pixels doubled) is resized back by the run's transform: the same detections,
    with boxes twice as large."""
    model = from_run(trained_run)
    _, path = val_images(trained_run)[1]
    with Image.open(path) as img:
        small = img.convert("RGB")
    big = small.resize((small.width * 2, small.height * 2), Image.NEAREST)
    a, b = model.predict([small, big], threshold=0.0)
    assert float(b["boxes"].abs().max()) > small.width  # not normalised, not in the resized image's pixels
    halved = {**b, "boxes": b["boxes"] / 2}
    assert_same_detections(as_rows(a), as_rows(halved), box_tol=1.0, score_tol=1e-3)


def test_threshold_keeps_scores_at_or_above_it(trained_run: Path) -> None:
    model = from_run(trained_run)
    _, path = val_images(trained_run)[0]
    with Image.open(path) as img:
        everything = model.predict(img, threshold=0.0)
        cut = float(everything["scores"][len(everything["scores"]) // 2])
        kept = model.predict(img, threshold=cut)
    assert len(kept["scores"]) == int((everything["scores"] >= cut).sum()) < len(everything["scores"])
    assert torch.equal(kept["boxes"], everything["boxes"][: len(kept["scores"])])


@pytest.mark.parametrize("image, error", [
    (torch.full((3, 8, 8), 2.0), "must be in \\[0, 1\\]"),
    (torch.zeros(4, 8, 8, dtype=torch.uint8), "shape \\(4, 8, 8\\)"),
    (torch.zeros(3, 8, 8, dtype=torch.int32), "torch.int32"),
    (np.zeros((8, 8, 3), dtype=np.uint8), "not ndarray"),
])
def test_predict_rejects_what_is_not_an_image(trained_run: Path, image: object, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        from_run(trained_run).predict([image])


def test_a_run_without_recorded_categories_names_them_by_id(trained_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    ckpt = torch.load(old / "checkpoint.pt", map_location="cpu", weights_only=True)
    del ckpt["categories"]
    torch.save(ckpt, old / "checkpoint.pt")
    model = from_run(old)
    det = model.predict(torch.zeros(3, 40, 60, dtype=torch.uint8), threshold=0.0)
    assert model.categories == {} and det["names"] == [str(int(i)) for i in det["labels"]]


def test_folders_that_are_not_trained_jobs_are_named(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no such job folder"):
        from_run(tmp_path / "missing")
    with pytest.raises(RunError, match=r"no \.hydra/config\.yaml"):
        from_run(tmp_path)
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(RunError, match="is a sweep folder: pass one of its job folders"):
        from_run(tmp_path)
    job = tmp_path / "job"
    shutil.copytree(trained_run / ".hydra", job / ".hydra")
    with pytest.raises(RunError, match="no checkpoint.pt"):
        from_run(job)
    (job / "checkpoint.pt").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="checkpoint.pt: unreadable"):
        from_run(job)
    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    (other / ".hydra" / "config.yaml").write_text(
        (other / ".hydra" / "config.yaml").read_text().replace("hidden_dim: 32", "hidden_dim: 64"))
    with pytest.raises(RunError, match="does not fit the model"):
        from_run(other)
