"""Report figures as PNG: AP per variant, AP/AP50 convergence, training loss."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ablate.report import atomic

DPI = 120
HEIGHT_IN = 5.0
PAPER_NOTE = "paper's AP (COCO val, ResNet-50, 50 epochs; right axis)"
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
    """AP per variant: bars = mean over seeds, error bars = std, dots = seeds; the paper's AP as a diamond
    beside each bar on its own (right) axis, because a small run and COCO R50 at 50 epochs share no scale."""
    variants = list(summary.index)
    colors = variant_colors(variants)
    fig = new_figure(figure_width("ap_bars", len(variants)))
    ax = fig.subplots()
    x = np.arange(len(variants))
    means = summary["AP_mean"].to_numpy(dtype=float)
    stds = np.nan_to_num(summary["AP_std"].to_numpy(dtype=float))
    ax.bar(x, np.nan_to_num(means), width=BAR_WIDTH, yerr=stds, capsize=4, color=[colors[v] for v in variants],
           alpha=0.85, edgecolor="black", linewidth=0.6, label="this sweep: mean ± std over seeds")
    top = float(np.nanmax(means + stds)) if np.isfinite(means).any() else 1.0
    if df is not None:
        seeds = df[df["counted"].astype(bool)]
        for i, v in enumerate(variants):
            values = seeds.loc[seeds["variant"] == v, "AP"].astype(float).to_numpy() * 100
            jitter = np.linspace(-0.1, 0.1, len(values)) if len(values) > 1 else np.zeros(len(values))
            ax.scatter(x[i] + jitter, values, s=14, color="black", zorder=3, label="seeds" if i == 0 else None)
    for i, mean in enumerate(means):
        if np.isnan(mean):  # no finished seed: say why instead of leaving a silent gap
            ax.text(x[i], top * 0.03, summary["status"].iloc[i], rotation=90, ha="center", va="bottom",
                    fontsize=9, color="dimgray")
        else:
            ax.text(x[i], mean + stds[i] + top * 0.02, f"{mean:.1f}", ha="center", va="bottom", fontsize=9,
                    fontweight="bold")
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)  # all-zero APs (a few-step run) still get an axis
    ax.set_ylabel("AP (%), this sweep (bars)")
    ax.set_xticks(x, [_wrap(v) for v in variants], fontsize=8)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    paper = summary["paper_AP"].to_numpy(dtype=float)
    if np.isfinite(paper).any():
        twin = ax.twinx()
        px = x + BAR_WIDTH / 2 + 0.08
        twin.scatter(px, paper, marker="D", s=40, color="crimson", zorder=4, label=PAPER_NOTE)
        for i, value in enumerate(paper):
            if np.isfinite(value):
                twin.annotate(f"{value:.1f}", (px[i], value), xytext=(0, 7), textcoords="offset points",
                              ha="center", fontsize=8, color="crimson")
        low, high = np.nanmin(paper), np.nanmax(paper)
        twin.set_ylim(np.floor(low) - 4, np.ceil(high) + 2)
        twin.set_ylabel("paper AP (%), COCO val R50 50 ep (diamonds)", color="crimson")
        twin.tick_params(axis="y", colors="crimson")
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    ax.set_title(_wrap_title(title or "AP per variant", fig))
    return fig


def plot_convergence(curves: pd.DataFrame, *, title: str | None = None,
                     variants: list[str] | None = None) -> Figure | None:
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
            ax.plot(band.index, band["mean"], marker="o", markersize=3, color=colors[v], label=v)
            ax.fill_between(band.index, band["min"], band["max"], color=colors[v], alpha=0.2, linewidth=0)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric} vs step (mean, band = min–max over seeds)", fontsize=10)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes[0][0])
    fig.suptitle(_wrap_title(title or "Convergence", fig))
    return fig


def plot_loss(curves: pd.DataFrame, *, title: str | None = None, variants: list[str] | None = None,
              metric: str = "loss") -> Figure | None:
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
        ax.plot(band.index, band["mean"], color=colors[v], label=v, linewidth=1.5)
        ax.fill_between(band.index, band["min"], band["max"], color=colors[v], alpha=0.2, linewidth=0)
    values = train[metric].astype(float)
    if (values > 0).all() and values.max() / values.min() > 20:
        ax.set_yscale("log")  # DETR losses fall by orders of magnitude early; log keeps the tail visible
    ax.set_xlabel("step")
    ax.set_ylabel(f"training {metric} (smoothed)")
    ax.set_title(_wrap_title(title or "Training loss (mean over seeds, band = min–max)", fig))
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    return fig


def write_figures(df: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, out: Path,
                  *, title: str | None = None) -> dict[str, Path]:
    """Write ap_bars.png, convergence.png and loss.png (the last two only when curves exist) into `out`."""
    out = Path(out)
    order = list(summary.index)
    figures = {
        "ap_bars.png": plot_ap_bars(summary, df, title=f"{title}: AP per variant" if title else None),
        "convergence.png": plot_convergence(curves, variants=order),
        "loss.png": plot_loss(curves, variants=order),
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


def _legend_below(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 2), fontsize=8)


def _wrap(label: str) -> str:
    return label.replace(" ", "\n")


def _wrap_title(title: str, fig: Figure) -> str:
    """Break a long title into lines that fit the figure (~11 characters per inch at the title's size)."""
    return "\n".join(textwrap.wrap(title, max(20, int(fig.get_figwidth() * 11))))
