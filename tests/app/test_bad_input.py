"""Bad input stops a job before any training with one clear line naming what is wrong, a non-zero exit status,
and nothing recorded as finished."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ablate.app import run_job
from ablate.config import compose
from ablate.data import DataError
from tests.app.conftest import read_result


def assert_not_finished(folder: Path) -> None:
    result = json.loads((folder / "result.json").read_text()) if (folder / "result.json").exists() else None
    assert result is None or result["status"] == "failed"
    assert not (folder / "checkpoint.pt").exists() and not (folder / "detections.json").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["csq=nope"], "ablate: In 'config': Could not find 'csq/nope'\n\nAvailable options in 'csq':\n\tC\n"),
    (["train.lr=abc"], "ablate: Error merging override train.lr=abc\nValue 'abc' of type 'str' could not be "
                       "converted to Float\n    full_key: train.lr"),
    (["train.batch_size=0"], "ablate: config error: train.batch_size=0 must be ≥ 1\n"),
    (["model.hidden_dim=30", "model.nheads=4"],
     "ablate: config error: model.hidden_dim=30 must be divisible by model.nheads=4\n"),
    (["model.backbone.widths=[8,-1]"],
     "ablate: config error: model.backbone.widths=[8, -1] must be a non-empty list of stage widths ≥ 1"),
    (["data=coco", "data.root=null"], "ablate: config error: data=coco needs data.root=DIR"),
    (["csq=T", "proj=identity"], "ablate: config error: csq=T with proj=identity: p_q = T(f)·𝟙 with T = I is the "
                                 "constant 𝟙 for every query and image"),
    (["train.seed=[1"], "ablate: cannot parse the argument 'train.seed=[1' (no viable alternative at input '[1'); "
                        "a value with '=', spaces or brackets needs quotes: key='value'\n"),
])
def test_bad_config_is_one_clear_line(tmp_path, cli, args, expected):
    out = tmp_path / "run"
    code, err = cli(*args, f"hydra.run.dir={out}")
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("ablate:")] == [err.split("\n", 1)[0]]
    assert not out.exists()  # refused before Hydra creates the run folder: nothing written


def test_output_folder_that_cannot_be_written(tmp_path, cli, tiny_cfg):
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    code, err = cli(f"hydra.run.dir={in_the_way}/run")
    assert code == 1 and err.strip() == f"ablate: {in_the_way}/run: Not a directory"
    with pytest.raises(OSError, match=f"cannot create the output folder {in_the_way}/run: Not a directory"):
        run_job(tiny_cfg(), in_the_way / "run")

    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new folders even to root
        read_only, reason = Path("/sys/ablate_reliability_test"), "Operation not permitted"
    else:
        read_only, reason = tmp_path / "read_only", "Permission denied"
        read_only.mkdir()
        read_only.chmod(0o555)
    code, err = cli(f"hydra.run.dir={read_only}/run")
    assert code == 1 and err.strip().startswith(f"ablate: {read_only}") and reason in err
    assert not read_only.joinpath("run").exists()


# --- COCO data ----------------------------------------------------------------------------------------------

def write_coco(root: Path, *, n_train: int = 8, n_val: int = 4) -> None:
    """A real COCO-2017 layout of small images, each with one box."""
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n):
            Image.new("RGB", (48, 40), (40 * i % 255, 90, 150)).save(root / split / f"{i}.png")
            images.append({"id": i + 1, "file_name": f"{i}.png", "width": 48, "height": 40})
            annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [4, 5, 20, 16],
                                "area": 320, "iscrowd": 0})
        data = {"images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data, indent=1))


def edit_annotations(root: Path, split: str, change: Any) -> Path:
    path = root / "annotations" / f"instances_{split}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))
    return path


def coco_args(root: Path) -> list[str]:
    return ["data=coco", f"data.root={root}", "data.train_scales=[40]", "data.max_size=64", "data.val_size=40",
            "data.crop=false", "data.num_workers=0", "train.max_steps=2"]


@pytest.fixture
def coco(tmp_path: Path, tiny) -> tuple[Path, list[str]]:
    root = tmp_path / "coco"
    write_coco(root)
    return root, tiny(*coco_args(root))


def malformed(root: Path) -> str:
    path = root / "annotations" / "instances_train2017.json"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rstrip(",") + " ]]"  # a stray bracket on line 4
    path.write_text("\n".join(lines))
    return f"{path}: malformed JSON at line 4, column"


def missing_file(root: Path) -> str:
    path = root / "annotations" / "instances_val2017.json"
    path.unlink()
    return f"annotation file not found: {path}"


def bad_schema(root: Path) -> str:
    path = edit_annotations(root, "train2017", lambda d: d["annotations"][2].update(bbox=[1, 2, "3"]))
    return f"{path}: annotations[2] (id=3): 'bbox' must be 4 finite numbers [x, y, w, h], got [1, 2, '3']"


def unknown_image(root: Path) -> str:
    path = edit_annotations(root, "train2017", lambda d: d["annotations"][0].update(image_id=99))
    return f"{path}: annotations[0] (id=1): image_id 99 is not in 'images'"


def image_file_gone(root: Path) -> str:
    (root / "train2017" / "3.png").unlink()
    return f"{root / 'train2017'}: 1 of 8 image files listed in instances_train2017.json are missing, e.g. 3.png"


def unknown_label(root: Path) -> str:
    path = edit_annotations(root, "val2017", lambda d: d["annotations"][1].update(category_id=7))
    return f"{path}: annotations[1] (id=2): category_id 7 is not in 'categories' (ids: 1, 2)"


def empty(root: Path) -> str:
    path = edit_annotations(root, "train2017", lambda d: d.update(images=[], annotations=[]))
    return f"{path}: no images, the data set is empty"


def no_root(root: Path) -> str:
    shutil.move(root, root.parent / "elsewhere")
    return f"COCO root folder not found: {root} (data.root)"


@pytest.mark.parametrize("breakage", [malformed, missing_file, bad_schema, unknown_image, image_file_gone,
                                      unknown_label, empty, no_root])
def test_broken_coco_data_fails_before_training_naming_the_problem(tmp_path, coco, breakage):
    root, overrides = coco
    expected = breakage(root)
    out = tmp_path / "run"
    with pytest.raises(DataError) as info:
        run_job(compose(overrides), out)
    assert expected in str(info.value)
    result = read_result(out)
    assert result["status"] == "failed" and result["error"]["type"] == "DataError"
    assert result["error"]["step"] is None and expected in result["error"]["message"]
    assert_not_finished(out)


def image_folder_gone(root: Path) -> str:
    shutil.rmtree(root / "val2017")
    return f"image folder not found: {root / 'val2017'}"


@pytest.mark.parametrize("breakage", [no_root, missing_file, image_folder_gone])
def test_missing_coco_input_refuses_a_run_before_its_folder_exists(tmp_path, coco, cli, breakage):
    root, _ = coco
    expected = breakage(root)
    out = tmp_path / "run"
    code, err = cli(*coco_args(root), f"hydra.run.dir={out}")
    assert code == 2 and err.strip() == f"ablate: data error: {expected}"
    assert not out.exists()


def test_missing_init_from_refuses_a_run_before_its_folder_exists(tmp_path, cli):
    out = tmp_path / "run"
    code, err = cli(f"model.init_from={tmp_path}/nowhere.pt", f"hydra.run.dir={out}")
    assert code == 2 and err.strip().startswith(f"ablate: model.init_from: no such file {tmp_path}/nowhere.pt")
    assert not out.exists()


def test_corrupt_image_is_named(tmp_path, coco, cli):
    root, overrides = coco
    (root / "train2017" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"cannot decode image .*train2017/2\.png"):
        run_job(compose(overrides), out)  # COCO decodes lazily: at the first batch, before any optimizer step
    assert read_result(out)["error"]["step"] == 0
    assert_not_finished(out)

    code, err = cli(*coco_args(root), f"hydra.run.dir={tmp_path / 'cli'}")
    assert code == 2 and "ablate: data error: cannot decode image" in err and "2.png" in err


def test_boxes_outside_the_image_are_clipped_and_counted(tmp_path, coco, caplog):
    root, overrides = coco

    def outside(d: dict) -> None:
        d["annotations"][0]["bbox"] = [30, 30, 40, 40]  # past the bottom-right corner of a 48x40 image
        d["annotations"][1]["bbox"] = [60, 50, 5, 5]  # wholly outside

    edit_annotations(root, "train2017", outside)
    with caplog.at_level(logging.WARNING):
        result = run_job(compose(overrides), tmp_path / "run")
    assert result["status"] == "finished"
    assert "instances_train2017.json: clipped 1 boxes to the image, dropped 1 degenerate boxes" in caplog.text
