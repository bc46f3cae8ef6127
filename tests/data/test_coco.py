"""CocoDetection on the awkward things real data contains, and clear errors on broken data."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from ablate.data import CocoDetection, DataError, load_coco_json

MakeCoco = Callable[..., tuple[Path, Path]]  # the make_coco fixture (conftest.py)


def image_record(image_id: int, file_name: str, width: int = 40, height: int = 30) -> dict[str, Any]:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def box_record(
    ann_id: int, image_id: int, category_id: int, bbox: list[float], **extra: Any
) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": bbox,
        "iscrowd": 0,
        **extra,
    }


def _awkward(make_coco: MakeCoco) -> tuple[Path, Path]:
    """Grayscale, RGBA and palette images, odd category ids, crowd, empty, clipped and degenerate boxes."""
    images = [
        image_record(1, "gray.png"),
        image_record(2, "rgba.png"),
        image_record(3, "palette.png"),
        image_record(4, "empty.jpg"),
    ]
    annotations = [
        box_record(10, 1, 7, [4, 6, 8, 10]),
        box_record(11, 1, 42, [0, 0, 40, 30], iscrowd=1),  # crowd: evaluation only
        box_record(12, 2, 42, [30, 20, 20, 20]),  # sticks out bottom-right: clipped to [30, 20, 10, 10]
        box_record(13, 2, 7, [-5, 2, 10, 4]),  # sticks out left: clipped to [0, 2, 5, 4]
        box_record(14, 2, 7, [50, 5, 5, 5]),  # wholly outside: dropped
        box_record(15, 3, 42, [10, 10, -3, 5]),  # negative width: dropped
        box_record(16, 3, 7, [10, 10, 0, 5]),  # zero width: dropped
    ]
    categories = [{"id": 7, "name": "seven"}, {"id": 42, "name": "forty-two"}]
    folder = make_coco(images, annotations, categories, write_images=False)[0]
    Image.new("L", (40, 30), 100).save(folder / "gray.png")
    Image.new("RGBA", (40, 30), (10, 20, 30, 0)).save(folder / "rgba.png")
    palette = Image.new("P", (40, 30), 1)
    palette.putpalette([0, 0, 0, 200, 50, 25] + [0] * 762)
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png", transparency=0)
    Image.new("RGB", (40, 30), (1, 2, 3)).save(folder / "empty.jpg")
    return make_coco(images, annotations, categories, write_images=False)


def test_awkward_but_valid_data(make_coco: MakeCoco, caplog: pytest.LogCaptureFixture) -> None:
    image_dir, ann_file = _awkward(make_coco)
    with caplog.at_level(logging.INFO, logger="ablate.data"):
        dataset = CocoDetection(image_dir, ann_file)
    assert dataset.stats == {"boxes": 3, "clipped": 2, "dropped": 3, "crowd": 1}
    assert (
        "instances.json: clipped 2 boxes to the image, dropped 3 degenerate boxes, skipped 1 crowd"
        in caplog.text
    )
    assert len(caplog.records) == 1

    assert len(dataset) == 4 and dataset.category_ids == [7, 42] and dataset.num_classes == 43
    scale = torch.tensor([40, 30, 40, 30], dtype=torch.float32)
    expected = {
        1: ([7], [[8.0, 11.0, 8.0, 10.0]]),
        2: ([42, 7], [[35.0, 25.0, 10.0, 10.0], [2.5, 4.0, 5.0, 4.0]]),
        3: ([], []),
        4: ([], []),
    }
    for index in range(len(dataset)):
        image, target = dataset[index]
        labels, boxes = expected[target["image_id"]]
        assert image.dtype == torch.float32 and image.shape == (3, 30, 40)
        assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == labels
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (len(labels), 4)
        torch.testing.assert_close(target["boxes"], torch.tensor(boxes).reshape(-1, 4) / scale)
        assert target["orig_size"].tolist() == [30, 40] and target["size"].tolist() == [30, 40]


def test_images_of_any_mode_become_rgb(make_coco: MakeCoco) -> None:
    dataset = CocoDetection(*_awkward(make_coco))
    colours = [dataset.load_image(i)[:, 0, 0].tolist() for i in range(3)]
    assert colours == [[100, 100, 100], [10, 20, 30], [200, 50, 25]]
    assert all(dataset.load_image(i).shape == (3, 30, 40) for i in range(4))


def test_evaluation_ground_truth_is_the_file_as_given(make_coco: MakeCoco, capsys) -> None:
    # what plain pycocotools reads from the file, so the reported AP can be recomputed from the run's files
    dataset = CocoDetection(*_awkward(make_coco))
    coco = dataset.coco
    assert capsys.readouterr().out == ""  # pycocotools' index printing is silenced
    assert sorted(coco.anns) == [10, 11, 12, 13, 14, 15, 16]
    assert coco.anns[11]["iscrowd"] == 1 and coco.anns[12]["bbox"] == [30, 20, 20, 20]
    assert coco.anns[12]["area"] == 400  # COCO's default for a file without areas: the box's
    assert sorted(coco.getCatIds()) == [7, 42]


def test_cached_images_equal_decoded_ones(make_coco: MakeCoco, caplog: pytest.LogCaptureFixture) -> None:
    image_dir, ann_file = _awkward(make_coco)
    lazy = CocoDetection(image_dir, ann_file)
    cached = CocoDetection(image_dir, ann_file, cache_images=True)
    assert cached._cache is not None
    for i in range(len(lazy)):
        assert torch.equal(lazy.load_image(i), cached.load_image(i))
    with caplog.at_level(logging.WARNING, logger="ablate.data"):
        over_budget = CocoDetection(image_dir, ann_file, cache_images=True, max_cache_bytes=1000)
    assert over_budget._cache is None and "not caching images" in caplog.text


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [\n  {"id": 1,, "file_name": "a.jpg"}\n]}')
    with pytest.raises(DataError, match=r"broken\.json: malformed JSON at line 2, column 12"):
        load_coco_json(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("categories"), r"missing the 'categories' list"),
        (lambda d: d.update(images={}), r"'images' must be a list, got an object"),
        (
            lambda d: d["annotations"][1].update(bbox=[1, 2, 3]),
            r"annotations\[1\] \(id=6\): 'bbox' must be 4",
        ),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), r"annotations\[0\] \(id=5\): 'bbox'"),
        (
            lambda d: d["annotations"][1].update(image_id=9),
            r"annotations\[1\] \(id=6\): image_id 9 is not in",
        ),
        (
            lambda d: d["annotations"][1].update(id=5),
            r"annotations\[1\]: duplicate id 5 \(also annotations\[0\]\)",
        ),
        (
            lambda d: d["images"][0].update(width=-3),
            r"images\[0\] \(id=1\): 'width' must be a positive integer",
        ),
        (lambda d: d["images"][0].pop("file_name"), r"images\[0\] \(id=1\): 'file_name'"),
        (lambda d: d["categories"][0].update(id="1"), r"categories\[0\]: 'id' must be an integer"),
        (
            lambda d: d["annotations"][0].update(iscrowd=2),
            r"annotations\[0\] \(id=5\): 'iscrowd' must be 0 or 1",
        ),
    ],
)
def test_schema_errors_name_the_entry_and_field(make_coco: MakeCoco, mutate, message: str) -> None:
    _, ann_file = make_coco(
        annotations=[box_record(5, 1, 1, [1, 1, 5, 5]), box_record(6, 1, 1, [2, 2, 5, 5])]
    )
    data = json.loads(ann_file.read_text())
    mutate(data)
    ann_file.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as error:
        load_coco_json(ann_file)
    assert str(ann_file) in str(error.value)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(DataError, match=r"list\.json: the top level must be a JSON object, got a list"):
        load_coco_json(path)


def test_unknown_category_is_named(make_coco: MakeCoco) -> None:
    image_dir, ann_file = make_coco(annotations=[box_record(5, 1, 3, [1, 1, 5, 5])])
    with pytest.raises(
        DataError, match=r"annotations\[0\] \(id=5\): category_id 3 is not in 'categories' \(ids: 1\)"
    ):
        CocoDetection(image_dir, ann_file)


def test_missing_image_files_are_counted_and_named(make_coco: MakeCoco) -> None:
    images = [image_record(i, f"{name}.jpg") for i, name in enumerate("abcd", start=1)]
    image_dir, ann_file = make_coco(images)
    (image_dir / "b.jpg").unlink()
    (image_dir / "d.jpg").unlink()
    with pytest.raises(
        DataError, match=r"2 of 4 image files listed in instances\.json are missing, e\.g\. b\.jpg, d\.jpg"
    ):
        CocoDetection(image_dir, ann_file)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_fails_on_load_naming_the_file(make_coco: MakeCoco, damage: str) -> None:
    image_dir, ann_file = make_coco([image_record(1, "ok.jpg"), image_record(2, "bad.jpg")])
    bad = image_dir / "bad.jpg"
    bad.write_bytes(b"not an image" if damage == "garbage" else bad.read_bytes()[:200])
    dataset = CocoDetection(image_dir, ann_file)  # decoding is lazy ...
    dataset[0]
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.jpg"):
        dataset[1]
    with pytest.raises(DataError, match=r"bad\.jpg"):  # ... unless the images are cached up front
        CocoDetection(image_dir, ann_file, cache_images=True)


def test_image_size_must_match_the_annotation(make_coco: MakeCoco) -> None:
    image_dir, ann_file = make_coco([image_record(1, "a.jpg", width=40, height=30)], write_images=False)
    Image.new("RGB", (30, 40)).save(image_dir / "a.jpg")
    with pytest.raises(DataError, match=r"a\.jpg: image is 30x40 but instances\.json says 40x30"):
        CocoDetection(image_dir, ann_file)[0]


def test_empty_dataset(make_coco: MakeCoco) -> None:
    image_dir, ann_file = make_coco(images=[])
    with pytest.raises(DataError, match=r"instances\.json: no images"):
        CocoDetection(image_dir, ann_file)


def test_missing_root_and_missing_annotation_file(make_coco: MakeCoco, tmp_path: Path) -> None:
    image_dir, ann_file = make_coco()
    with pytest.raises(DataError, match=r"image folder not found: .*nowhere"):
        CocoDetection(tmp_path / "nowhere", ann_file)
    with pytest.raises(DataError, match=r"annotation file not found: .*missing\.json"):
        CocoDetection(image_dir, tmp_path / "missing.json")
    with pytest.raises(DataError, match=r"annotation path is not a file"):
        CocoDetection(image_dir, image_dir)
