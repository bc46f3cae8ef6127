"""Seeded fuzzing of the input contract: malformed COCO files and configs, a few hundred of each.

Every case must end in the error the CLI turns into one ``ablate:`` line with exit status 2 (``explain``), never
in another exception; a sample goes through the real in-process CLI, which must also leave nothing finished.
"""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from ablate.__main__ import explain
from ablate.config import compose, validate
from ablate.data import CocoDetection, DataError
from tests.app.test_bad_input import assert_not_finished, coco_args, write_coco

JUNK: list[Any] = [None, -1, 0, 1.5, 10**6, 10**9, 10**30, -(10**30), math.nan, math.inf, -math.inf, 1e308, "",
                   "x", "1", "../x.png", "/etc/passwd", "a\x00b", [], [1, 2], {}, {"a": 1}, True, False]
LISTS = ("images", "annotations", "categories")


def valid_coco() -> dict[str, Any]:
    images = [{"id": i, "file_name": f"{i}.png", "width": 24, "height": 16} for i in range(1, 4)]
    annotations = [{"id": 10 + i, "image_id": 1 + i % 3, "category_id": 1 + i % 2, "bbox": [2, 3, 8, 6],
                    "area": 48, "iscrowd": 0} for i in range(6)]
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def mutate(rng: random.Random, data: dict[str, Any]) -> Any:
    """One to three random breakages of a valid COCO dict (or its top level replaced outright)."""
    if rng.random() < 0.05:
        return rng.choice([[], None, 3, "x", [data]])
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(LISTS)
        kind = rng.random()
        if kind < 0.05:
            data.pop(key, None)
        elif kind < 0.1:
            data[key] = rng.choice(JUNK)
        elif not isinstance(data.get(key), list) or not data[key]:
            continue
        elif kind < 0.15:
            data[key].append(copy.deepcopy(rng.choice(data[key])))  # a duplicate id
        elif kind < 0.2:
            data[key][rng.randrange(len(data[key]))] = rng.choice(JUNK)
        elif kind < 0.25:
            data[key] = []
        else:
            entry = rng.choice(data[key])
            if not isinstance(entry, dict) or not entry:
                continue
            field = rng.choice([*entry, "bbox", "file_name"])
            if rng.random() < 0.2:
                entry.pop(field, None)
            elif field == "bbox" and rng.random() < 0.5:
                entry[field] = [rng.choice(JUNK) if rng.random() < 0.3 else rng.uniform(-50, 50)
                                for _ in range(rng.choice([3, 4, 4, 5]))]
            else:
                entry[field] = rng.choice(JUNK)
    return data


def write(folder: Path, data: Any, rng: random.Random) -> Path:
    path = folder / "instances.json"
    text = json.dumps(data)  # NaN and Infinity too: Python's json reads them back
    if rng.random() < 0.05:
        text = text[: rng.randrange(len(text))]  # truncated
    raw = text.encode()
    if rng.random() < 0.03:
        raw = b"\xff\xfe" + raw  # not UTF-8
    path.write_bytes(raw)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(1, 4):
        Image.new("RGB", (24, 16), (10 * i, 20, 30)).save(folder / f"{i}.png")
    return folder


def test_malformed_coco_files_fail_with_a_data_error(image_folder, tmp_path):
    rng = random.Random(16)
    bad = 0
    for case in range(400):
        data = mutate(rng, valid_coco())
        path = write(tmp_path, data, rng)
        try:
            dataset = CocoDetection(image_folder, path)
            dataset.coco  # noqa: B018  the evaluation ground truth is built from the same file
            for i in range(len(dataset)):
                _, target = dataset[i]
                assert all(0 <= int(label) < dataset.num_classes for label in target["labels"])
        except DataError as e:
            bad += 1
            message = str(e)
            assert "\n" not in message and (str(path) in message or str(image_folder) in message), (case, message)
            assert explain(e) is not None and explain(e)[0] == 2
        except Exception as e:  # anything else would reach the user as a traceback
            pytest.fail(f"case {case}: {type(e).__name__}: {e}\n{json.dumps(data, default=str)[:800]}")
    assert bad > 250  # the generator mostly produces broken files, not harmless edits


CONFIG_KEYS = ["train.lr", "train.lr_backbone", "train.batch_size", "train.epochs", "train.max_steps",
               "train.warmup_steps", "train.clip_max_norm", "train.weight_decay", "train.device", "eval.top_k",
               "eval.batch_size", "eval.every", "model.hidden_dim", "model.nheads", "model.num_queries",
               "model.num_classes", "model.dropout", "model.backbone.widths", "data.num_workers", "data.crop_min",
               "data.crop_max", "data.crop_scales", "data.train_scales", "data.max_size", "data.val_size",
               "data.shapes.num_train", "data.shapes.min_size", "data.shapes.noise", "data.max_category_id",
               "data.resolution", "data.name", "logger.name"]
CONFIG_JUNK = ["-1", "0", "nan", "-inf", "abc", "[]", "[0]", "[-5,3]", "-0.5", "1e400", "gpu", "''", "null"]


def bad_config(rng: random.Random) -> list[str]:
    key = rng.choice(CONFIG_KEYS)
    if rng.random() < 0.1:
        return [f"+{key.rsplit('.', 1)[0]}.{rng.choice(['max_step', 'lrr', 'typo'])}=1"]
    return [f"{key}={rng.choice(CONFIG_JUNK)}"]


def apply(base: DictConfig, override: str) -> DictConfig:
    """``override`` applied as Hydra applies it to the composed config (parsed by Hydra's override grammar,
    merged into the typed nodes; ``+`` lifts struct mode), without composing again: ~1 ms instead of ~0.3 s."""
    parsed = OverridesParser.create().parse_overrides([override])[0]
    cfg = copy.deepcopy(base)
    OmegaConf.update(cfg, parsed.key_or_group, parsed.value(), merge=True, force_add=parsed.is_add())
    return cfg


def test_malformed_configs_fail_with_one_clear_error(tmp_path):
    base = compose(["logger=none", f"data.root={tmp_path}"])
    rng = random.Random(16)
    refused = 0
    for case in range(400):
        args = bad_config(rng)
        try:
            validate(apply(base, args[0]))
        except Exception as e:
            refused += 1
            known = explain(e)
            assert known is not None and known[0] == 2, (case, args, repr(e))
    assert refused > 250


@pytest.mark.parametrize("seed", range(2))
def test_sample_through_the_cli(tmp_path, cli, seed):
    """The full contract, on the real command: exit 2, one line, no traceback, nothing finished."""
    rng = random.Random(seed)
    root = tmp_path / "coco"
    write_coco(root)
    path = root / "annotations" / "instances_train2017.json"
    original = json.loads(path.read_text())
    while True:  # a breakage the data layer refuses (the harmless ones would train)
        data = mutate(rng, original)
        path.write_text(json.dumps(data))
        try:
            CocoDetection(root / "train2017", path)
        except DataError:
            break
    out = tmp_path / "run"
    code, err = cli(*coco_args(root), f"hydra.run.dir={out}")
    lines = [line for line in err.splitlines() if line.startswith("ablate:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert_not_finished(out)

    args = bad_config(rng)
    while True:
        try:
            compose(["logger=none", *args])
        except Exception:
            break
        finally:
            GlobalHydra.instance().clear()
        args = bad_config(rng)
    code, err = cli(*args, f"hydra.run.dir={tmp_path / 'cfg'}")
    assert code == 2 and "Traceback" not in err and err.count("\nablate:") + err.startswith("ablate:") == 1, err
    assert_not_finished(tmp_path / "cfg")
