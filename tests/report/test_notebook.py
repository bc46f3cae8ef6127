import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import ablate

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ablation_report.ipynb"


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


@pytest.mark.timeout(300)
def test_notebook_executes_on_a_sweep(sweep, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    out = tmp_path / "nb-report"
    src = str(Path(ablate.__file__).resolve().parents[1])  # the kernel imports the same ablate as the tests
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("ABLATE_SWEEP_DIR", str(sweep))
    monkeypatch.setenv("ABLATE_REPORT_OUT", str(out))
    nb = nbformat.read(work / NOTEBOOK.name, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    assert (out / "table.md").is_file() and (out / "index.md").is_file()
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert "21.5 ± 2.1" in html  # the table shown as a DataFrame
