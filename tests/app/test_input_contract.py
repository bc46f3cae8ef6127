"""Every input mistake of issue 16 gets one ``ablate:`` line naming the key or file and entry, exit status 2,
and nothing marked finished; in a sweep the job is recorded ``failed`` with that message."""

from __future__ import annotations

import json
import os
import pickle
import threading

import pytest
import torch

from tests.app.conftest import read_result
from tests.app.test_bad_input import assert_not_finished, coco_args, edit_annotations, write_coco


def assert_one_line(code: int, err: str, expected: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("ablate:")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and expected in lines[0], err[-2000:]
    assert "Traceback" not in err and "weights_only=False" not in err


@pytest.mark.parametrize(("args", "expected"), [
    (["train.lr=nan"], "config error: train.lr=nan must be a number"),
    (["data.num_workers=-1"], "config error: data.num_workers=-1 must be ≥ 0"),
    (["data.shapes.num_train=0"], "config error: data.shapes.num_train=0 must be ≥ 1"),
    (["data.crop=true", "data.crop_min=100", "data.crop_max=50"],
     "config error: data.crop_min=100, data.crop_max=50: need 1 ≤ crop_min ≤ crop_max"),
    (["data.crop=true", "data.crop_scales=[]"], "config error: data.crop_scales=[] needs at least one size ≥ 1"),
    (["train.device=gpu"], "config error: train.device='gpu' is not a device"),
    (["+train.max_step=20"], "config error: train.max_step is not a config key (did you mean train.max_steps?)"),
    (["+data.shapes.num_trian=3"], "config error: data.shapes.num_trian is not a config key"),
    (["model.num_classes=3"], "data error: model.num_classes=3 is too small for"),
    (["data=coco", "data.root=null", "data.train_ann=/x.json"], "config error: data=coco needs data.root=DIR"),
])
def test_bad_setting_is_one_line_and_recorded_failed(tmp_path, cli, args, expected):
    out = tmp_path / "run"
    code, err = cli(*args, f"hydra.run.dir={out}")
    assert_one_line(code, err, expected)
    assert_not_finished(out)
    if (out / "result.json").exists():  # the job got far enough to be recorded: it says why it failed
        assert expected.split(": ", 1)[1] in read_result(out)["error"]["message"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_recorded_failed_in_a_sweep(tmp_path, cli):
    sweep = tmp_path / "sweep"
    code, err = cli("hydra.mode=MULTIRUN", "train.device=cuda,cpu", "train.max_steps=1", f"hydra.sweep.dir={sweep}")
    assert code == 1, err[-3000:]  # a sweep with a failed job exits 1
    results = {p.parent.name.split("_")[0]: read_result(p.parent) for p in sweep.glob("*/result.json")}
    assert results["0"]["status"] == "failed"
    assert results["0"]["error"]["message"].startswith("train.device=cuda but CUDA is not available")
    assert results["1"]["status"] == "finished"

    code, err = cli("train.device=cuda", f"hydra.run.dir={tmp_path / 'single'}")
    assert_one_line(code, err, "config error: train.device=cuda but CUDA is not available on this machine")
    assert not (tmp_path / "single").exists()  # a single run is refused before its folder is created


def test_garbage_or_hostile_init_from_is_refused_without_running_it(tmp_path, cli):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"model": Hostile()}))
    for path in (garbage, hostile):
        out = tmp_path / path.stem
        code, err = cli(f"model.init_from={path}", f"hydra.run.dir={out}")
        assert_one_line(code, err, f"model.init_from={path} is not a checkpoint that loads safely")
        assert_not_finished(out)
    assert not marker.exists()


# --- COCO files ---------------------------------------------------------------------------------------------

def set_category_id(value: int):
    def change(d: dict) -> None:
        d["categories"][0]["id"] = value
        for ann in d["annotations"]:
            if ann["category_id"] == 1:
                ann["category_id"] = value
    return change


@pytest.mark.parametrize(("change", "expected"), [
    (set_category_id(-1), "categories[0] (id=-1): category ids must be ≥ 0"),
    (set_category_id(10**6), "categories[0] (id=1000000): category id 1000000 would need a 1000001-way "
                             "classifier for 2 categories (ids are not remapped); renumber the ids, or set "
                             "data.max_category_id=1000000"),
    (set_category_id(10**9), "categories[0] (id=1000000000): category id 1000000000"),
    (lambda d: d.update(categories=[], annotations=[]), "'categories' is empty"),
    (lambda d: d["images"][0].update(file_name="../secret.png"),
     "images[0] (id=1): file_name '../secret.png' points outside the image folder; set "
     "data.allow_outside_images=true"),
    (lambda d: d["images"][0].update(file_name="/etc/passwd"), "file_name '/etc/passwd' points outside"),
    (lambda d: d["images"][0].update(file_name="sub/../../x.png"), "points outside the image folder"),
])
def test_bad_coco_entry_is_one_line(tmp_path, cli, change, expected):
    root = tmp_path / "coco"
    write_coco(root)
    path = edit_annotations(root, "train2017", change)
    out = tmp_path / "run"
    code, err = cli(*coco_args(root), f"hydra.run.dir={out}")
    assert_one_line(code, err, f"data error: {path}: ")
    assert expected in err
    assert_not_finished(out)
    assert read_result(out)["status"] == "failed"


def test_large_category_ids_train_when_allowed(tmp_path, cli):
    root = tmp_path / "coco"
    write_coco(root)
    for split in ("train2017", "val2017"):
        edit_annotations(root, split, set_category_id(300))
    code, err = cli(*coco_args(root), "data.max_category_id=300", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]
    assert read_result(tmp_path / "run")["status"] == "finished"


def test_file_names_outside_the_folder_when_allowed(tmp_path, cli):
    root = tmp_path / "coco"
    write_coco(root)
    (root / "train2017" / "0.png").rename(root / "outside.png")
    edit_annotations(root, "train2017", lambda d: d["images"][0].update(file_name="../outside.png"))
    code, err = cli(*coco_args(root), "data.allow_outside_images=true", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]


def test_four_paths_without_a_root_work(tmp_path, cli):
    root = tmp_path / "coco"
    write_coco(root)
    paths = [f"data.train_images={root / 'train2017'}", f"data.val_images={root / 'val2017'}",
             f"data.train_ann={root / 'annotations/instances_train2017.json'}",
             f"data.val_ann={root / 'annotations/instances_val2017.json'}"]
    code, err = cli(*coco_args(root), "data.root=null", *paths, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]
    assert read_result(tmp_path / "run")["status"] == "finished"


def test_an_image_that_is_a_fifo_never_hangs(tmp_path, cli):
    root = tmp_path / "coco"
    write_coco(root)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (root / "train2017" / "2.png").unlink()
    (root / "train2017" / "2.png").symlink_to(fifo)
    out = tmp_path / "run"
    done: list = []
    worker = threading.Thread(target=lambda: done.append(cli(*coco_args(root), f"hydra.run.dir={out}")),
                              daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("the loader blocked on a FIFO")
    code, err = done[0]
    assert_one_line(code, err, "are not regular files (a FIFO, device or folder), e.g. 2.png")
    assert_not_finished(out)


def test_data_with_no_boxes_reports_ap_undefined(tmp_path, cli):
    root = tmp_path / "coco"
    write_coco(root)
    edit_annotations(root, "val2017", lambda d: d.update(annotations=[]))
    code, err = cli(*coco_args(root), f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, err[-2000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "finished"
    assert result["metrics"]["AP"] is None and result["metrics"]["AP50"] is None  # COCO's -1: undefined, not 0
