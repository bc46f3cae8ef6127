import json

from ablate.config import axis_labels, compose, model_axes
from ablate.report import gather, summarize, write_tables
from ablate.report.labels import constant_axes, variant_labels
from tests.report.conftest import job_dir


def add_labels(sweep, nums):
    for num in nums:
        path = job_dir(sweep, num) / "result.json"
        result = json.loads(path.read_text())
        result["labels"] = axis_labels(result["axes"])
        path.write_text(json.dumps(result))


def test_axis_labels_come_from_the_registries():
    labels = axis_labels(model_axes(compose(["csq=T", "proj=block"])))
    assert labels["csq"] == "CSQ-T" and labels["proj"] == "T = block" and labels["ref"] == "s = FFN(o_q)"
    assert axis_labels(model_axes(compose(["csq=detr"])))["csq"] == "DETR"
    assert axis_labels(model_axes(compose(["csq=C"])))["proj"] == "n/a"


def test_rows_named_by_labels_constants_in_caption(sweep, tmp_path):
    add_labels(sweep, [0, 1, 3, 4, 6, 7, 8, 9])
    df = gather([sweep])
    names = variant_labels(df)
    assert names[df.loc[df["csq"] == "detr", "variant"].iloc[0]] == "DETR, softmax CE, no box offsets"
    assert names[df.loc[df["csq"] == "C", "variant"].iloc[0]] == "CSQ-C, s = FFN(o_q), focal loss, box offsets"
    assert constant_axes(df) == ["model tiny", "20 queries"]
    summary = summarize(df)
    files = write_tables(summary, tmp_path)
    md = files["table.md"].read_text()
    assert "All rows: model tiny, 20 queries." in md.splitlines()[0]
    assert "| CSQ, T = diagonal, s = FFN(o_q), focal loss, box offsets" in md
    assert "All rows: model tiny, 20 queries." in files["table.tex"].read_text()


def test_old_files_fall_back_to_the_axes(sweep):
    df = gather([sweep])
    names = variant_labels(df)
    assert names[df.loc[df["csq"] == "C", "variant"].iloc[0]] == "csq=C, ref=query, focal=true, offset=true"
    assert constant_axes(df) == ["model=tiny", "num_queries=20"]
