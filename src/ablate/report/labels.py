"""Readable variant names: each axis value as result.json's `labels` spell it (the registries' own labels,
e.g. "CSQ-C", "T = block"), or `axis=value` for files written before `labels` existed.

A row names every axis that varies in the sweep; the axes that are the same for every row are said once, in the
caption (`constant_axes`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ablate.report.gather import axis_columns, format_value, varying_axes

NA = "n/a"  # the run files' value of an axis the model does not contain


def axis_label(row: pd.Series, axis: str) -> str:
    """How `row` (a gathered job) prints one axis value."""
    labels = row.get("labels")
    if isinstance(labels, dict) and isinstance(labels.get(axis), str):
        return labels[axis]
    return f"{axis}={format_value(row[axis])}"


def variant_labels(df: pd.DataFrame) -> dict[str, str]:
    """`variant` -> its readable name from the varying axes (an axis a variant does not contain is left out)."""
    axes, vary = axis_columns(df), varying_axes(df)
    out: dict[str, str] = {}
    for variant, group in df.groupby("variant", sort=False):
        rep = _representative(group, axes)
        parts = [axis_label(rep, a) for a in vary if not _isna(rep[a]) and format_value(rep[a]) != NA]
        out[variant] = ", ".join(parts) or str(variant)
        if str(variant).endswith("]"):  # same axes, another config: keep gather's tag apart
            out[variant] += " [" + str(variant).rsplit("[", 1)[1]
    counts = pd.Series(list(out.values())).value_counts()
    return {v: (label if counts[label] == 1 else str(v)) for v, label in out.items()}


def constant_axes(df: pd.DataFrame) -> list[str]:
    """Labels of the axes with one value in every job that reports it (the caption's "all rows: ...")."""
    vary = set(varying_axes(df))
    out = []
    for axis in axis_columns(df):
        known = df[df[axis].map(lambda v: not _isna(v))]
        if axis in vary or known.empty or format_value(known[axis].iloc[0]) == NA:
            continue
        out.append(axis_label(_representative(known, [axis]), axis))
    return out


def _representative(group: pd.DataFrame, axes: list[str]) -> pd.Series:
    # the row that knows the most: labels first, then the most axes (a missing job knows only its overrides)
    score = group[axes].notna().sum(axis=1) + 100 * group["labels"].map(lambda v: isinstance(v, dict))
    return group.loc[score.idxmax()]


def _isna(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
