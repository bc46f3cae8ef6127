"""Attention figures come from the job folders' files (`python -m ablate.attention`), never from a model."""

import re

import matplotlib.image as mpimg
import numpy as np

from ablate.attention import files
from ablate.attention.draw import draw_attention
from ablate.report.__main__ import main
from tests.report.conftest import job_dir


def fake_attention(job, label, image=0, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"picture": rng.random((40, 60, 3)), "gt_box": np.array([5.0, 5.0, 30.0, 25.0]),
              "pred_box": np.array([8.0, 6.0, 33.0, 28.0]), "spatial": rng.random((4, 5, 7)),
              "content": rng.random((4, 5, 7)), "combined": rng.random((4, 5, 7))}
    folder = job / files.FOLDER
    draw_attention(arrays["picture"], arrays["gt_box"], {k: arrays[k] for k in files.KINDS},
                   folder / f"image{image}.png", pred_box=arrays["pred_box"])
    files.save_maps(folder / f"image{image}.npz", **arrays)
    files.add_image(job, {"label": label, "seed": seed, "step": 200, "layer": 3},
                    {"image": image, "png": f"image{image}.png", "maps": f"image{image}.npz"})


def test_attention_run_and_comparison_read_job_files(sweep, tmp_path, capsys):
    fake_attention(job_dir(sweep, 0), "DETR")
    fake_attention(job_dir(sweep, 6), "CSQ, T = diagonal", seed=1)
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out), "--no-wandb", "--attention-run", str(job_dir(sweep, 6)),
                 "--compare-attention", str(job_dir(sweep, 0)), str(job_dir(sweep, 6))]) == 0
    assert (out / "attention.png").read_bytes() == (job_dir(sweep, 6) / "attention" / "image0.png").read_bytes()
    pixels = mpimg.imread(out / "attention_comparison.png")
    assert pixels.shape[0] > 300 and np.std(pixels[..., :3]) > 0.05
    index = (out / "index.md").read_text()
    assert "](attention.png)" in index and "](attention_comparison.png)" in index
    # every job's own figure is copied into the report (nothing links outside it), captioned by variant, seed, step
    link = re.search(r"!\[DETR, seed 0, step 200, image 0\]\((attention/[^)]+\.png)\)", index).group(1)
    assert (out / link).read_bytes() == (job_dir(sweep, 0) / "attention" / "image0.png").read_bytes()
    assert "](../" not in index and "](/" not in index


def test_missing_attention_files_say_how_to_draw_them(sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(sweep), "--out", str(out), "--attention-run", str(job_dir(sweep, 3)), "--image", "2"]) == 0
    err = capsys.readouterr().err
    assert "no attention maps" in err and f"python -m ablate.attention {job_dir(sweep, 3)} --image 2" in err
    assert (out / "index.md").exists() and not (out / "attention.png").exists()
