import pandas as pd

from ablate.report import gather, load_curves, summarize
from ablate.report.figures import _wrap, plot_ap_bars, plot_convergence, plot_loss


def short_curves(steps=(5,)):
    rows = []
    for v in ("a", "b"):
        for s in (0, 1):
            for step in steps:
                rows.append({"job": f"{v}{s}", "variant": v, "seed": s, "counted": True, "kind": "eval",
                             "step": step, "AP": 0.01 * (s + 1), "AP50": 0.02})
                rows.append({"job": f"{v}{s}", "variant": v, "seed": s, "counted": True, "kind": "train",
                             "step": step, "loss": 3.0 + s})
    return pd.DataFrame(rows)


def inside(fig, artist) -> bool:
    fig.canvas.draw()
    box, page = artist.get_window_extent(), fig.bbox
    return box.x0 >= page.x0 and box.y0 >= page.y0 and box.x1 <= page.x1 and box.y1 <= page.y1


def test_one_point_run_has_integer_steps_and_no_offset():
    for fig in (plot_convergence(short_curves((1000005,))), plot_loss(short_curves((1000005,)))):
        fig.canvas.draw()
        ax = fig.axes[0]
        labels = [t.get_text().replace("−", "-") for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(label.lstrip("-").isdigit() for label in labels), labels
        assert ax.xaxis.get_offset_text().get_text() == ""  # no "+1e6" beside the axis
        assert ax.get_legend() is not None and inside(fig, ax.get_legend())


def test_few_evaluations_are_ticked_at_their_steps():
    fig = plot_convergence(short_curves((20, 40)))
    fig.canvas.draw()
    assert [int(x) for x in fig.axes[0].get_xticks()] == [20, 40]  # not 21, 24, 27, … between them
    many = plot_convergence(short_curves(tuple(range(100, 2600, 100))))  # 25 evaluations: a regular scale
    many.canvas.draw()
    assert len(many.axes[0].get_xticks()) < 25


def test_long_titles_stay_inside_the_figure(sweep):
    df = gather([sweep])
    summary = summarize(df)
    long = "Convergence at the default budget (2,500 steps): WWWW MMMM vs DETR (tiny, shapes, 3 seeds) " * 2
    for fig in (plot_ap_bars(summary, df, title=long), plot_convergence(short_curves((5, 10)), title=long),
                plot_loss(short_curves((5, 10)), title=long)):
        title = fig._suptitle if fig._suptitle is not None else fig.axes[0].title
        assert "\n" in title.get_text() and inside(fig, title)


def test_ap_bars_paper_in_its_own_panel(sweep):
    df = gather([sweep])
    summary = summarize(df)
    fig = plot_ap_bars(summary, df)
    ours, paper = fig.axes  # two panels, no twin axis sharing one panel
    assert ours.get_position().y0 > paper.get_position().y1
    assert ours.get_ylabel().startswith("AP (%)") and paper.get_ylabel() == "paper AP (%)"
    texts = [t.get_text() for t in paper.texts]
    assert "40.9" in texts and "34.9" in texts
    assert all(inside(fig, ax.get_legend()) for ax in (ours, paper))


def test_curves_of_the_fake_sweep_use_labels(sweep):
    df = gather([sweep])
    summary = summarize(df)
    names = dict(zip(summary.index, summary["label"]))
    fig = plot_convergence(load_curves(df), variants=list(summary.index), names=names)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == "csq=detr, focal=false, offset=false"


def test_tick_labels_break_at_commas_between_parts_not_inside_brackets():
    assert _wrap("s = (0, 0)") == "s = (0, 0)"
    assert _wrap("CSQ-I, T = diagonal") == "CSQ-I,\nT = diagonal"
