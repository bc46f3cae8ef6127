"""The statistics of the report, from scipy and statsmodels: intervals, two-sample tests over seeds, Holm's
correction, and the seeds a difference needs. Values are AP points (percent); NaN where a test is undefined."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

LEVEL = 0.95  # every interval of the report
POWER = 0.8  # seeds_needed: the chance to detect the paper's difference


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The t interval of the mean of `values` (NaN, NaN for fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    if x.std() == 0:  # zero spread: the interval is the single value (scipy would return NaN)
        return float(x.mean()), float(x.mean())
    low, high = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    return float(low), float(high)


def welch(x: Sequence[float], y: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """Welch's t-test of mean(x) − mean(y): `delta`, `p_welch`, and the Welch t interval `ci_low`, `ci_high`."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    delta = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    out = {"delta": delta, "p_welch": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if len(x) < 2 or len(y) < 2:
        return out
    if x.std() == 0 and y.std() == 0:  # no spread at all: the difference is exact (t is infinite or 0/0)
        return {**out, "p_welch": 0.0 if delta != 0 else 1.0, "ci_low": delta, "ci_high": delta}
    result = stats.ttest_ind(x, y, equal_var=False)
    ci = result.confidence_interval(level)
    return {**out, "p_welch": float(result.pvalue), "ci_low": float(ci.low), "ci_high": float(ci.high)}


def paired_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Paired t-test p of x − y (same seeds, in the same order); NaN for fewer than two pairs."""
    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    if len(d) < 2:
        return math.nan
    if d.std() == 0:
        return 0.0 if d.mean() != 0 else 1.0
    return float(stats.ttest_rel(x, y).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p over the defined values (NaN stays NaN and is not counted)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    defined = ~np.isnan(p)
    if defined.any():
        out[defined] = multipletests(p[defined], method="holm")[1]
    return out.tolist()


def seeds_needed(std_x: float, std_y: float, delta: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Seeds per variant for `power` in a two-sided test at `alpha` to detect `delta`, given the two standard
    deviations (normal approximation: n = ⌈(z_{1−α/2} + z_power)² (s_x² + s_y²) / Δ²⌉, at least 2)."""
    if any(math.isnan(v) for v in (std_x, std_y, delta)) or delta == 0:
        return math.nan
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(max(2, math.ceil(z**2 * (std_x**2 + std_y**2) / delta**2)))
