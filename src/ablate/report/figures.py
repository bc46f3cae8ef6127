"""Report figures as PNG: AP per variant, AP/AP50 convergence, training loss."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, MaxNLocator, ScalarFormatter

from ablate.report import atomic

DPI = 120
HEIGHT_IN = 5.0
MAX_STEP_TICKS = 12  # up to this many evaluation steps, each gets its own tick
PAPER_NOTE = "the paper (COCO val, ResNet-50, 50 epochs)"
BAR_WIDTH = 0.6


def figure_width(kind: str, n_variants: int) -> float:
    """Figure width in inches; bar charts widen with the number of variants so labels stay readable."""
    if kind == "ap_bars":
        return max(8.0, 1.1 * n_variants + 2.0)
    return 12.0 if kind == "convergence" else 8.0


def new_figure(width: float, height: float = HEIGHT_IN) -> Figure:
    """A pyplot-free figure on the Agg canvas: headless, no global backend switch (a notebook keeps its own),
    nothing to close."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def variant_colors(variants: list[str]) -> dict[str, tuple]:
    """One colour per variant, the same in every figure."""
    cmap = matplotlib.colormaps["tab10" if len(variants) <= 10 else "tab20"]
    return {v: cmap(i % cmap.N) for i, v in enumerate(variants)}


def plot_ap_bars(summary: pd.DataFrame, df: pd.DataFrame | None = None, *, title: str | None = None) -> Figure:
    """AP per variant in two panels over the same variants: this sweep (bars = mean over seeds, error bars = std,
    dots = seeds) and the paper's AP (COCO val, R50, 50 epochs) in its own panel with its own axis, never a second
    y-axis on one panel. Value labels carry one digit more than the axis' tick labels."""
    variants = list(summary.index)
    names = _names(summary)
    colors = variant_colors(variants)
    paper = summary["paper_AP"].to_numpy(dtype=float)
    has_paper = bool(np.isfinite(paper).any())
    fig = new_figure(figure_width("ap_bars", len(variants)))
    axes = fig.subplots(2 if has_paper else 1, 1, sharex=True, squeeze=False,
                        height_ratios=[3, 2] if has_paper else None)[:, 0]
    x = np.arange(len(variants))
    ax = axes[0]
    means = summary["AP_mean"].to_numpy(dtype=float)
    stds = np.nan_to_num(summary["AP_std"].to_numpy(dtype=float))
    ax.bar(x, np.nan_to_num(means), width=BAR_WIDTH, yerr=stds, capsize=4, color=[colors[v] for v in variants],
           alpha=0.85, edgecolor="black", linewidth=0.6, label="mean ± std over seeds")
    if df is not None:
        seeds = df[df["counted"].astype(bool)]
        for i, v in enumerate(variants):
            values = seeds.loc[seeds["variant"] == v, "AP"].astype(float).to_numpy() * 100
            jitter = np.linspace(-0.1, 0.1, len(values)) if len(values) > 1 else np.zeros(len(values))
            ax.scatter(x[i] + jitter, values, s=14, color="black", zorder=3, label="one seed" if i == 0 else None)
    top = float(np.nanmax(means + stds)) if np.isfinite(means).any() else 1.0
    ax.set_ylim(0, top * 1.4 if top > 0 else 1.0)  # room for the legend; all-zero APs still get an axis
    _value_labels(ax, x, means, means + stds, [summary["status"].iloc[i] for i in range(len(variants))])
    ax.set_ylabel("AP (%), this sweep")
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    heading = ax.set_title(title or "AP per variant")
    if has_paper:
        pax = axes[1]
        pax.bar(x, np.nan_to_num(paper), width=BAR_WIDTH, color=[colors[v] for v in variants], alpha=0.45,
                edgecolor="black", linewidth=0.6, hatch="//", label=PAPER_NOTE)
        pax.set_ylim(0, np.nanmax(paper) * 1.4)
        _value_labels(pax, x, paper, paper, ["no paper row"] * len(variants))
        pax.set_ylabel("paper AP (%)")
        pax.legend(loc="upper center", fontsize=8)
    for a in axes:
        a.grid(axis="y", alpha=0.3)
        a.set_xlim(-0.6, len(variants) - 0.4)
    axes[-1].set_xticks(x, [_wrap(names[v]) for v in variants], fontsize=8)
    _fit_title(heading, fig)
    return fig


def _value_labels(ax: Axes, x: np.ndarray, values: np.ndarray, tops: np.ndarray, missing: list[str]) -> None:
    """Each bar's value above it, one digit finer than the axis' tick labels; the reason where there is none."""
    ticks = ax.yaxis.get_major_formatter().format_ticks(ax.get_yticks())
    decimals = max((len(t.split(".")[1]) for t in ticks if "." in t), default=0) + 1
    low, high = ax.get_ylim()
    for i, value in enumerate(values):
        if np.isnan(value):  # no finished seed / no paper row: say why instead of leaving a silent gap
            ax.text(x[i], low + 0.03 * (high - low), missing[i], rotation=90, ha="center", va="bottom", fontsize=8,
                    color="dimgray")
        else:
            ax.text(x[i], tops[i] + 0.02 * (high - low), f"{value:.{decimals}f}", ha="center", va="bottom",
                    fontsize=8, fontweight="bold")


def plot_convergence(curves: pd.DataFrame, *, title: str | None = None, variants: list[str] | None = None,
                     names: dict[str, str] | None = None) -> Figure | None:
    """AP and AP50 (%) vs step per variant: line = mean over seeds, band = min–max over seeds."""
    evals = _counted(curves, "eval")
    metrics = [m for m in ("AP", "AP50") if m in evals]
    if evals.empty or not metrics:
        return None
    variants = _present(variants, evals)
    colors = variant_colors(variants)
    fig = new_figure(figure_width("convergence", len(variants)))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for v in variants:
            band = _band(evals[evals["variant"] == v], metric, scale=100)
            if band.empty:
                continue
            ax.plot(band.index, band["mean"], marker="o", markersize=3, color=colors[v], label=(names or {}).get(v, v))
            ax.fill_between(band.index, band["min"], band["max"], color=colors[v], alpha=0.2, linewidth=0)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric} vs step (mean, band = min–max over seeds)", fontsize=10)
        ax.grid(alpha=0.3)
        _step_axis(ax, sorted(int(s) for s in evals["step"].unique()))
    axes[0][0].legend(loc="best", fontsize=8)
    _fit_title(fig.suptitle(title or "Convergence"), fig)
    return fig


def plot_loss(curves: pd.DataFrame, *, title: str | None = None, variants: list[str] | None = None,
              metric: str = "loss", names: dict[str, str] | None = None) -> Figure | None:
    """Training loss vs step per variant, each seed lightly smoothed, then mean line and min–max band."""
    train = _counted(curves, "train")
    if train.empty or metric not in train:
        return None
    variants = _present(variants, train)
    colors = variant_colors(variants)
    fig = new_figure(figure_width("loss", len(variants)))
    ax = fig.subplots()
    for v in variants:
        smoothed = [_smooth(g.sort_values("step"), metric) for _, g in train[train["variant"] == v].groupby("job")]
        smoothed = [s for s in smoothed if not s.empty]
        if not smoothed:
            continue
        band = _band(pd.concat(smoothed), metric)
        ax.plot(band.index, band["mean"], color=colors[v], label=(names or {}).get(v, v), linewidth=1.5)
        ax.fill_between(band.index, band["min"], band["max"], color=colors[v], alpha=0.2, linewidth=0)
    values = train[metric].astype(float)
    if (values > 0).all() and values.max() / values.min() > 20:
        ax.set_yscale("log")  # DETR losses fall by orders of magnitude early; log keeps the tail visible
    ax.set_xlabel("step")
    ax.set_ylabel(f"training {metric} (smoothed)")
    heading = ax.set_title(title or "Training loss (mean over seeds, band = min–max)")
    ax.grid(alpha=0.3)
    _step_axis(ax)
    ax.legend(loc="best", fontsize=8)
    _fit_title(heading, fig)
    return fig


def write_figures(df: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, out: Path,
                  *, title: str | None = None) -> dict[str, Path]:
    """Write ap_bars.png, convergence.png and loss.png (the last two only when curves exist) into `out`."""
    out = Path(out)
    order, names = list(summary.index), _names(summary)
    figures = {
        "ap_bars.png": plot_ap_bars(summary, df, title=f"{title}: AP per variant" if title else None),
        "convergence.png": plot_convergence(curves, variants=order, names=names),
        "loss.png": plot_loss(curves, variants=order, names=names),
    }
    return {name: atomic.save_figure(fig, out / name, dpi=DPI) for name, fig in figures.items() if fig is not None}


def _counted(curves: pd.DataFrame, kind: str) -> pd.DataFrame:
    # Failed runs and duplicates of gathered jobs stay out of the mean curves, as they do in the table.
    if curves.empty:
        return curves
    return curves[(curves["kind"] == kind) & curves["counted"].astype(bool)]


def _present(order: list[str] | None, frame: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(frame["variant"]))
    return [v for v in order if v in present] if order else present


def _band(frame: pd.DataFrame, metric: str, scale: float = 1.0) -> pd.DataFrame:
    values = frame[["step", metric]].dropna()
    values = values.assign(**{metric: values[metric].astype(float) * scale})
    return values.groupby("step")[metric].agg(["mean", "min", "max"]).sort_index()


def _smooth(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    values = frame[["step", metric]].dropna()
    window = max(1, len(values) // 25)
    return values.assign(**{metric: values[metric].astype(float).rolling(window, min_periods=1).mean()})


def _step_axis(ax: Axes, steps: list[int] | None = None) -> None:
    """Steps as whole numbers, written out (no "1e3" offset), even for a one- or two-point run; with a few
    evaluation steps, the ticks are those steps (not 21, 24, 27 between evaluations at 20 and 40)."""
    if steps is not None and 0 < len(steps) <= MAX_STEP_TICKS:
        ax.xaxis.set_major_locator(FixedLocator(steps))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.xaxis.get_major_formatter().set_scientific(False)
    if ax.get_yscale() == "linear":
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))


def _names(summary: pd.DataFrame) -> dict[str, str]:
    """variant -> readable label (summary's `label` column; the variant itself without one)."""
    labels = summary["label"] if "label" in summary else pd.Series(summary.index, index=summary.index)
    return {v: str(labels[v]) for v in summary.index}


def _wrap(label: str, width: int = 16) -> str:
    """A tick label on several lines: one per comma-separated part (not a comma inside brackets, as in
    "s = (0, 0)"), each wrapped at `width` characters."""
    parts = re.split(r", (?![^()]*\))", label)
    return "\n".join(textwrap.fill(part + ("," if i < len(parts) - 1 else ""), width) for i, part in enumerate(parts))


def _fit_title(text: Text, fig: Figure) -> None:
    """Break a finished figure's long title into lines that fit inside the figure, measured where the layout puts
    it (an axes title is centred over its axes, not the figure; a characters-per-inch guess ran past the edge)."""
    words = " ".join(text.get_text().split())
    width = max(20, int(fig.get_figwidth() * 12))
    for _ in range(10):
        text.set_text("\n".join(textwrap.wrap(words, width)))
        fig.canvas.draw()  # the layout places the title
        box, page = text.get_window_extent(), fig.bbox
        over = max(page.x0 - box.x0, box.x1 - page.x1, 0.0)
        if over <= 0 or width <= 10:
            return
        width = max(10, int(width * (box.width - 2 * over) / box.width) - 1)
