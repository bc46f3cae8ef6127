import pytest

from ablate.report.paper import paper_ap, paper_row

FULL = {"csq": "full", "proj": "diagonal", "ref": "query", "focal": True, "offset": True}


@pytest.mark.parametrize(("axes", "ap"), [
    # Table 3
    ({"csq": "C", "proj": "n/a"}, 37.1), ({"csq": "T"}, 37.6), ({"csq": "P", "proj": "n/a"}, 37.8),
    ({"csq": "I"}, 40.2), (FULL, 40.9), ({"csq": "detr"}, 34.9),
    # Table 4 (DETR + focal loss / offsets from the reference point)
    ({"csq": "detr", "focal": False, "offset": False, "ref": "n/a", "proj": "n/a"}, 34.9),
    ({"csq": "detr", "focal": False, "offset": True, "ref": "query"}, 35.0),
    ({"csq": "detr", "focal": True, "offset": False}, 35.3),
    ({"csq": "detr", "focal": True, "offset": True, "ref": "query", "proj": "n/a"}, 36.9),
    # Figure 5
    ({**FULL, "proj": "identity"}, 37.8), ({**FULL, "proj": "scalar"}, 39.0), ({**FULL, "proj": "block"}, 40.8),
    ({**FULL, "proj": "full"}, 40.7), ({**FULL, "proj": "diag"}, 40.9),
    # §4.3 reference points, footnote 1
    ({**FULL, "ref": "zero"}, 36.8), ({**FULL, "ref": "learned"}, 40.7), ({"csq": "detr_content"}, 34.0),
    # run-file spellings: strings for booleans, extra axes the paper does not vary
    ({"csq": "full", "proj": "diagonal", "ref": "query", "focal": "true", "offset": "true", "model": "tiny",
      "num_queries": 20}, 40.9),
])
def test_paper_values(axes, ap):
    assert paper_ap(axes) == ap


def test_identity_projection_is_csq_p():
    assert paper_row({**FULL, "proj": "identity"}) == paper_row({"csq": "P", "proj": "n/a"})


@pytest.mark.parametrize("axes", [
    {**FULL, "proj": "scalar", "ref": "zero"},  # two axes changed from the full model
    {**FULL, "focal": False},  # the paper has no full model without focal loss
    {"csq": "I", "proj": "block"},
    {"csq": "detr", "focal": True, "offset": True, "ref": "zero"},
    {"csq": "something_new"},
])
def test_no_paper_value(axes):
    assert paper_ap(axes) is None
