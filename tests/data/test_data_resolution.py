"""Input sizes follow the model and the data (data.resolution, model.max_resolution)."""

from __future__ import annotations

import numpy as np

from ablate.config import compose
from ablate.data.resolution import describe_sizes, fit_sizes


def sizes(cfg) -> tuple:
    return (list(cfg.train_scales), cfg.max_size, cfg.val_size, list(cfg.crop_scales), cfg.crop_min, cfg.crop_max)


def test_the_default_run_keeps_its_sizes(tmp_path):
    cfg = compose([f"data.root={tmp_path}"])
    assert cfg.data.resolution == "fixed" and cfg.model.max_resolution == 128
    fitted = fit_sizes(cfg.data, np.array([[128, 128]] * 4), cfg.model.max_resolution)
    assert sizes(fitted) == ([96, 104, 112, 120, 128, 136, 144], 192, 128, [128], 80, 128)


def test_small_images_train_at_their_own_size_on_the_laptop_model():
    cfg = compose(["data=coco", "data.root=/data"])
    assert cfg.data.resolution == "auto"
    images = np.array([[128, 120]] * 5 + [[140, 128]] * 5)  # median short side 124
    fitted = fit_sizes(cfg.data, images, cfg.model.max_resolution)
    # the paper's 480–800 / 1333 / crop 384–600, read relative to val_size 800, at 124 px
    assert sizes(fitted) == ([74, 79, 84, 89, 94, 99, 104, 109, 114, 119, 124], 207, 124, [62, 78, 93], 60, 93)
    assert sizes(cfg.data)[2] == 800  # the config itself is left as it was
    line = describe_sizes(fitted, images, cfg.model.max_resolution)
    assert "train short side 74–124 px" in line and "median training short side 124 px" in line


def test_large_images_are_capped_by_the_model_and_resnets_keep_the_paper_sizes():
    images = np.array([[480, 640]] * 3)
    tiny = compose(["data=coco", "data.root=/data"])
    assert fit_sizes(tiny.data, images, tiny.model.max_resolution).val_size == 128
    r50 = compose(["data=coco", "data.root=/data", "model=r50"])
    assert r50.model.max_resolution is None
    fitted = fit_sizes(r50.data, images, r50.model.max_resolution)
    assert sizes(fitted) == ([480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800], 1333, 800, [400, 500, 600],
                             384, 600)
