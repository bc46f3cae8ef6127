"""`python -m ablate.report NEW --baseline OLD`: the same variants of two sweeps side by side, to check a change of
code or protocol. Variants are matched by their axes (not the config key, which a protocol change alters)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ablate.report import atomic, stats
from ablate.report.gather import axis_columns, format_value
from ablate.report.labels import variant_labels
from ablate.report.tables import DASH, to_markdown

NOTES = ("Δ = NEW − OLD in AP points; 95% CI: Welch t interval of Δ; p: Welch's t-test (the two sweeps are "
         "independent runs, so no pairing). A variant in one sweep only is listed with a dash.")


def axes_key(row: pd.Series, axes: list[str]) -> str:
    """The variant's axes as one string (`csq=C proj=n/a ...`), the same in both sweeps."""
    return " ".join(f"{a}={format_value(row[a])}" for a in axes)


def compare_sweeps(new: pd.DataFrame, old: pd.DataFrame, metric: str = "AP") -> pd.DataFrame:
    """One row per variant in either sweep: label, seeds, mean and std in each, delta, its interval and p."""
    axes = [a for a in axis_columns(new) if a in axis_columns(old)]
    frames = {}
    for name, df in (("new", new), ("old", old)):
        counted = df[df["counted"].astype(bool) & df[metric].notna()]
        frames[name] = {k: g[metric].astype(float).to_numpy() * 100
                        for k, g in counted.groupby(counted.apply(axes_key, axis=1, axes=axes), sort=False)}
    labels = {**_labels(old, axes), **_labels(new, axes)}
    rows = []
    for key in dict.fromkeys([*_keys(new, axes), *_keys(old, axes)]):
        x, y = frames["new"].get(key, []), frames["old"].get(key, [])
        row = {"variant": key, "label": labels.get(key, key), "n_new": len(x), "n_old": len(y),
               "mean_new": _mean(x), "std_new": _std(x), "mean_old": _mean(y), "std_old": _std(y)}
        row.update(stats.welch(x, y))
        rows.append(row)
    return pd.DataFrame(rows)


def write_baseline(table: pd.DataFrame, out: Path, new: str, old: str) -> dict[str, Path]:
    """baseline.md and baseline.csv in `out`."""
    printed = pd.DataFrame({
        "variant": table["label"],
        "NEW": [_mean_std(m, s, n) for m, s, n in zip(table["mean_new"], table["std_new"], table["n_new"])],
        "OLD": [_mean_std(m, s, n) for m, s, n in zip(table["mean_old"], table["std_old"], table["n_old"])],
        "Δ": table["delta"].map(lambda v: DASH if pd.isna(v) else f"{v:+.1f}"),
        "95% CI": [DASH if pd.isna(lo) else f"[{lo:+.1f}, {hi:+.1f}]"
                   for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "p": table["p_welch"].map(lambda v: DASH if pd.isna(v) else f"{v:.3f}"),
    }).set_index("variant")
    md = (f"NEW: `{new}`  \nOLD: `{old}`\n\nAP in percent, mean ± std (seeds). {NOTES}\n\n"
          + to_markdown(printed) + "\n")
    return {"baseline.md": atomic.write_text(Path(out) / "baseline.md", md),
            "baseline.csv": atomic.write_text(Path(out) / "baseline.csv", table.to_csv(index=False,
                                                                                        float_format="%.4g"))}


def _keys(df: pd.DataFrame, axes: list[str]) -> list[str]:
    return list(dict.fromkeys(df.apply(axes_key, axis=1, axes=axes))) if len(df) else []


def _labels(df: pd.DataFrame, axes: list[str]) -> dict[str, str]:
    names = variant_labels(df)
    return {axes_key(row, axes): names.get(row["variant"], row["variant"]) for _, row in df.iterrows()}


def _mean(x) -> float:
    return float(pd.Series(x, dtype=float).mean())


def _std(x) -> float:
    return float(pd.Series(x, dtype=float).std(ddof=1))


def _mean_std(mean: float, std: float, n: int) -> str:
    if n == 0:
        return DASH
    return f"{mean:.1f} ({n})" if pd.isna(std) else f"{mean:.1f} ± {std:.1f} ({n})"
