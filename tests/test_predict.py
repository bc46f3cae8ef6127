"""``python -m ablate.predict`` on a tiny job trained in the session (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from ablate.data.shapes import CATEGORIES
from ablate.inference import from_run
from ablate.predict import main


def val_jpgs(run: Path) -> list[Path]:
    return sorted((run.parent / "data").rglob("val/*.jpg"))  # the data.root of tests/conftest.py


@pytest.fixture
def photos(trained_run: Path, tmp_path: Path) -> Path:
    """A folder of images of several sizes and formats, and a file that is not an image (skipped)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    first, second = val_jpgs(trained_run)[:2]
    shutil.copy(first, folder / "a.jpg")
    with Image.open(second) as img:
        img.convert("RGB").resize((200, 150)).save(folder / "b.png")
        img.convert("L").resize((90, 120)).save(folder / "c.jpg")  # grayscale, portrait
    (folder / "notes.txt").write_text("not an image")
    return folder


def run_main(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_a_folder_gives_drawn_pngs_and_coco_results(trained_run: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_main(trained_run, photos, "--out", out, "--threshold", "0")
    assert code == 0 and "3 image(s)" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "detections.json", "images.json"]

    index = json.loads((out / "images.json").read_text())
    assert [(im["id"], im["file_name"], im["drawn"]) for im in index["images"]] == [
        (1, "a.jpg", "a.png"), (2, "b.png", "b.png"), (3, "c.jpg", "c.png")]
    assert index["categories"] == [{"id": i + 1, "name": name} for i, name in enumerate(CATEGORIES)]
    detections = json.loads((out / "detections.json").read_text())
    gt = COCO()  # the two files are a COCO data set and its results: pycocotools reads them as such
    gt.dataset = {**index, "annotations": []}
    gt.createIndex()
    assert len(gt.loadRes(detections).getAnnIds()) == len(detections) > 0

    model = from_run(trained_run)
    for image in index["images"]:
        with Image.open(image["path"]) as img:
            original = np.array(img.convert("RGB"))
            expected = model.predict(img, threshold=0.0)
        with Image.open(out / image["drawn"]) as png:
            drawn = np.array(png.convert("RGB"))
        assert drawn.shape == original.shape == (image["height"], image["width"], 3)
        mine = [d for d in detections if d["image_id"] == image["id"]]
        assert [d["score"] for d in mine] == pytest.approx(expected["scores"].tolist())
        assert [d["category_id"] for d in mine] == expected["labels"].tolist()
        # the best box's outline is drawn: its top edge, inside the picture, has changed pixels
        x0, y0, x1, _ = (int(round(v)) for v in expected["boxes"][0].tolist())
        y = min(max(y0, 0), image["height"] - 1)
        xs = slice(max(x0, 0), min(x1, image["width"]))
        assert (drawn[y, xs] != original[y, xs]).any(axis=-1).mean() > 0.5


def test_a_high_threshold_draws_the_image_unchanged(trained_run: Path, photos: Path, tmp_path: Path) -> None:
    code, _, _ = run_main(trained_run, photos / "b.png", "--out", tmp_path / "out", "--threshold", "1")
    with Image.open(photos / "b.png") as a, Image.open(tmp_path / "out" / "b.png") as b:
        assert code == 0 and np.array_equal(np.array(a.convert("RGB")), np.array(b))
    assert json.loads((tmp_path / "out" / "detections.json").read_text()) == []


def test_the_default_output_folder_is_in_the_run(trained_run: Path, photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert run_main(run, photos / "a.jpg")[0] == 0
    assert (run / "predictions" / "a.png").is_file()


@pytest.mark.parametrize("case", ["missing", "empty folder", "text file", "broken jpg", "not a run", "threshold"])
def test_bad_input_is_one_line_and_nothing_is_written(trained_run: Path, photos: Path, tmp_path: Path,
                                                      case: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    run, images, extra, named = {
        "missing": (trained_run, [photos, tmp_path / "nope.jpg"], [], "nope.jpg"),
        "empty folder": (trained_run, [empty], [], "empty"),
        "text file": (trained_run, [photos / "a.jpg", photos / "notes.txt"], [], "notes.txt"),
        "broken jpg": (trained_run, [tmp_path / "broken.jpg"], [], "broken.jpg"),
        "not a run": (tmp_path, [photos], [], str(tmp_path)),
        "threshold": (trained_run, [photos], ["--threshold", "1.5"], "--threshold"),
    }[case]
    out = tmp_path / "out"
    code, stdout, stderr = run_main(run, *images, *extra, "--out", out)
    assert code == 2 and stdout == ""
    assert stderr.startswith("ablate: ") and stderr.count("\n") == 1 and named in stderr
    assert not out.exists()


def test_two_images_that_would_draw_to_one_png_are_refused(trained_run: Path, photos: Path, tmp_path: Path
                                                          ) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(photos / "a.jpg", other / "a.png")
    code, _, stderr = run_main(trained_run, photos / "a.jpg", other / "a.png", "--out", tmp_path / "out")
    assert code == 2 and "a.png" in stderr and not (tmp_path / "out").exists()


def test_python_m_ablate_predict(trained_run: Path, photos: Path, tmp_path: Path) -> None:
    """The module entry point: exit status and the one line, from a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-m", "ablate.predict", str(trained_run), str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == f"ablate: {tmp_path / 'nope'}: no such file or folder\n"
    proc = subprocess.run([sys.executable, "-m", "ablate.predict", str(trained_run), str(photos / "a.jpg"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert torch.tensor(np.array(Image.open(tmp_path / "out" / "a.png"))).shape[:2] == (128, 128)
