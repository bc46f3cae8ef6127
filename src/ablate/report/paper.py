"""The paper's COCO AP for an ablation variant (Meng et al. 2021, §4.3; see shared/paper.md §2).

Values are R50, 50 epochs, COCO val, in percent. A variant gets the value of the paper row whose axes it matches
exactly; a variant that differs from every row (e.g. two axes changed from the default) has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PAPER_AXES: tuple[str, ...] = ("csq", "proj", "ref", "focal", "offset")
NA = "n/a"
FULL_MODEL: dict[str, Any] = {"csq": "full", "proj": "diagonal", "ref": "query", "focal": True, "offset": True}
# DETR rows use DETR's own recipe unless the axes say otherwise: no focal loss, no offsets, hence no reference point.
DETR_MODEL: dict[str, Any] = {"csq": "detr", "proj": NA, "ref": NA, "focal": False, "offset": False}
DETR_LIKE = ("detr", "detr_content")
# Spatial queries that use no learned projection T (so `proj` does not apply).
NO_PROJ = ("C", "P", *DETR_LIKE)


@dataclass(frozen=True)
class PaperRow:
    """One AP value of the paper and where it is printed."""

    axes: Mapping[str, Any]
    ap: float
    source: str


def _full(**changes: Any) -> dict[str, Any]:
    return {**FULL_MODEL, **changes}


def _detr(**changes: Any) -> dict[str, Any]:
    return {**DETR_MODEL, **changes}


PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow(_full(), 40.9, "Table 3 CSQ / Table 4 / Fig. 5 diagonal / §4.3 s=FFN(o_q)"),
    PaperRow(_full(csq="C", proj=NA), 37.1, "Table 3 CSQ-C"),
    PaperRow(_full(csq="T"), 37.6, "Table 3 CSQ-T"),
    PaperRow(_full(csq="P", proj=NA), 37.8, "Table 3 CSQ-P = Fig. 5 identity"),
    PaperRow(_full(csq="I"), 40.2, "Table 3 CSQ-I"),
    PaperRow(_full(proj="scalar"), 39.0, "Fig. 5 single scalar"),
    PaperRow(_full(proj="block"), 40.8, "Fig. 5 block-diagonal"),
    PaperRow(_full(proj="full"), 40.7, "Fig. 5 full matrix"),
    PaperRow(_full(ref="zero"), 36.8, "§4.3 reference s=(0,0)"),
    PaperRow(_full(ref="learned"), 40.7, "§4.3 reference learned per query"),
    PaperRow(_detr(), 34.9, "Table 1 / Table 4 DETR-R50 50 ep"),
    # Table 4: OR = offset regression from the (default, FFN(o_q)) reference point; FL = focal loss, 300 queries.
    PaperRow(_detr(offset=True, ref="query"), 35.0, "Table 4 OR only"),
    PaperRow(_detr(focal=True), 35.3, "Table 4 FL only"),
    PaperRow(_detr(focal=True, offset=True, ref="query"), 36.9, "Table 4 FL + OR"),
    PaperRow(_detr(csq="detr_content"), 34.0, "footnote 1: DETR without positions after layer 1"),
)

_ALIASES = {
    "csq": {"ours": "full", "csq": "full", "conditional": "full", "detr-content": "detr_content"},
    "proj": {"diag": "diagonal", "lambda": "diagonal", "none": "identity", "id": "identity", "blockdiag": "block",
             "block_diagonal": "block"},
    "ref": {"ffn": "query", "zeros": "zero", "param": "learned"},
}


def canonical_axes(axes: Mapping[str, Any]) -> dict[str, Any]:
    """The paper-relevant axes of a variant in one spelling: defaults filled in, aliases and equivalences resolved."""
    # None/NaN (an axis a missing job never reported) means "not given": the default applies.
    given = {k: v for k, v in axes.items() if v is not None and v == v}
    if "focal" not in given and isinstance(given.get("loss"), str):
        given["focal"] = given["loss"].lower() == "focal"
    csq = _canonical_csq(given.get("csq", FULL_MODEL["csq"]))
    base = DETR_MODEL if csq in DETR_LIKE else FULL_MODEL
    out: dict[str, Any] = {"csq": csq}
    for axis in PAPER_AXES[1:]:
        value = given.get(axis, base[axis])
        if axis in ("focal", "offset"):
            value = _as_bool(value)
        elif isinstance(value, str) and value != NA:
            value = _ALIASES[axis].get(value.lower(), value.lower())
        out[axis] = value
    # Identity T on p_s is CSQ-P (the paper's consistency check: both print 37.8).
    if out["csq"] == "full" and out["proj"] == "identity":
        out["csq"] = "P"
    if out["csq"] in NO_PROJ:
        out["proj"] = NA
    # Without offsets a DETR-style head never reads the reference point.
    if out["csq"] in DETR_LIKE and out["offset"] is False:
        out["ref"] = NA
    return out


def paper_row(axes: Mapping[str, Any]) -> PaperRow | None:
    """The paper row matching a variant's axes exactly ("n/a" or absent axes take the row's value), or None."""
    variant = canonical_axes(axes)
    for row in PAPER_ROWS:
        if all(_same(variant[a], row.axes[a]) for a in PAPER_AXES):
            return row
    return None


def paper_ap(axes: Mapping[str, Any]) -> float | None:
    """The paper's COCO AP (percent, R50, 50 ep) for a variant, or None when the paper has no such row."""
    row = paper_row(axes)
    return None if row is None else row.ap


def _canonical_csq(value: Any) -> str:
    text = str(value).strip()
    if text.upper().removeprefix("CSQ-") in ("C", "T", "P", "I"):
        return text.upper().removeprefix("CSQ-")
    return _ALIASES["csq"].get(text.lower(), text.lower())


def _as_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "on", "yes", "1", "focal"):
            return True
        if lowered in ("false", "off", "no", "0", "ce"):
            return False
        return value
    return bool(value) if isinstance(value, (int, float)) else value


def _same(value: Any, expected: Any) -> bool:
    # "n/a" in the run files means the axis does not exist in that model, so it cannot differ from the row.
    return value == NA or expected == NA or value == expected
