import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from ablate.report.figures import DPI, HEIGHT_IN, figure_width

FIGURES = {"ap_bars.png": "ap_bars", "convergence.png": "convergence", "loss.png": "loss"}


def test_report_files(report):
    names = {p.name for p in report.iterdir() if p.is_file()}
    assert names == {"index.md", "table.md", "table.csv", "table.tex", "jobs.csv", "ap_bars.png",
                     "convergence.png", "loss.png", "convergence.md", "convergence.csv", "orderings.md", "orderings.csv"}
    assert report.name == "report" and report.parent.name == "2026-11-25_14-00-00"  # default: <sweep>/report
    assert not [p for p in report.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_are_nonempty_pngs_of_the_expected_size(report, name):
    path = report / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    expected = (round(HEIGHT_IN * DPI), round(figure_width(FIGURES[name], 4) * DPI))
    assert pixels.shape[:2] == expected
    assert np.std(pixels[..., :3]) > 0.05  # something was drawn, not a blank canvas


def test_index_links_every_file(report):
    index = (report / "index.md").read_text()
    links = set(re.findall(r"\]\(([^)]+)\)", index))
    for path in report.iterdir():
        if path.is_file() and path.name != "index.md":
            assert path.name in links, path.name
    assert all((report / link).exists() for link in links if not link.startswith("../"))


def test_index_content(report):
    index = (report / "index.md").read_text()
    assert index.startswith("# Fake sweep\n")
    assert "python -m ablate.report" in index and re.search(r"Date: \d{4}-\d\d-\d\d", index)
    assert "Jobs: 10 (6 finished, 1 duplicate, 2 failed, 1 missing)" in index
    assert "| 21.5 ± 2.1 |" in re.sub(r" +", " ", index)  # the table inline
    assert "FloatingPointError: loss is NaN (step 120)" in index and "CUDA out of memory" in index
    assert "## Convergence" in index and "speed-up vs" in index


def test_attention_hook_files_are_linked(sweep, tmp_path):
    from ablate.attention.draw import draw_attention
    from ablate.report import write_report

    def hook(out):
        maps = {"spatial": np.random.rand(2, 3, 3)}
        return [draw_attention(np.random.rand(3, 32, 32), np.array([[4.0, 4.0, 20.0, 20.0]]), maps,
                               out / "attention_layer6.png")]

    out = write_report([sweep], tmp_path / "rep", attention_fn=hook)
    index = (out / "index.md").read_text()
    assert "## Attention maps" in index and "](attention_layer6.png)" in index


def test_attention_hook_failure_is_noted(sweep, tmp_path):
    from ablate.report import write_report

    def broken(out):
        raise RuntimeError("no checkpoint")

    with pytest.warns(UserWarning, match="no checkpoint"):
        out = write_report([sweep], tmp_path / "rep", attention_fn=broken)
    assert "attention maps not drawn: RuntimeError: no checkpoint" in (out / "index.md").read_text()
    assert (out / "table.md").exists()


def test_job_without_axes_has_no_paper_value(tmp_path):
    from ablate.report import gather, summarize

    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "result.json").write_text('{"status": "running", "seed": 0}')
    summary = summarize(gather([tmp_path]))
    assert summary["status"].tolist() == ["1 running or killed"]
    assert summary["paper_AP"].isna().all()
