"""result.json of a real job has exactly the fields docs/run_files.md shows, so the documented contract is the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ablate.app import run_job

DOC = Path(__file__).resolve().parents[2] / "docs" / "run_files.md"


def documented_result() -> dict:
    return json.loads(re.search(r"```json\n(.*?)```", DOC.read_text(), re.S).group(1))


def test_a_finished_job_writes_every_documented_field_and_no_other(tmp_path, tiny_cfg):
    assert run_job(tiny_cfg(), tmp_path)["status"] == "finished"
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert set(on_disk) == set(documented_result())
    assert set(on_disk["machine"]) == set(documented_result()["machine"])
    assert on_disk["machine"]["cores"] >= 1 and on_disk["machine"]["gpu"] is None  # the tests run on CPU
