"""python -m ablate.report DIR... [--out OUT] [--wandb ENTITY/PROJECT] [--no-wandb] [--attention-run JOBDIR]
[--title T]"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ablate.report.gather import NoJobsFound


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the report."""
    parser = argparse.ArgumentParser(prog="python -m ablate.report",
                                     description="Tables and figures for the job folders of ablation sweeps.")
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="sweep or job folders (searched recursively)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: <first DIR>/report)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", default=None,
                        help="also list the project's W&B runs and log the report as a W&B run")
    parser.add_argument("--no-wandb", action="store_true", help="never touch W&B, even with --wandb")
    parser.add_argument("--attention-run", type=Path, metavar="JOBDIR", default=None,
                        help="draw attention maps from this finished job's checkpoint")
    parser.add_argument("--compare-attention", nargs="+", type=Path, metavar="JOBDIR", default=None,
                        help="draw these jobs' spatial attention maps side by side over one validation image "
                             "(e.g. DETR and Conditional DETR trained for the same steps: the paper's Figure 1)")
    parser.add_argument("--image", type=int, default=0, help="validation image for the attention figures")
    parser.add_argument("--title", default=None, help="report title")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report; 0 even when some jobs failed (the report lists them), 2 when no job folder exists."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from ablate.report.build import write_report

    attention_fn = None
    if args.attention_run is not None:
        from ablate.report.attention_run import make_attention_fn

        try:
            attention_fn = make_attention_fn(args.attention_run, image_index=args.image)
        except (FileNotFoundError, NotImplementedError) as exc:
            print(f"warning: no attention maps: {exc}", file=sys.stderr)
    if args.compare_attention:
        attention_fn = _with_comparison(attention_fn, args.compare_attention, args.image)
    try:
        out = write_report(args.dirs, args.out, title=args.title,
                           wandb=None if args.no_wandb else args.wandb, attention_fn=attention_fn,
                           command="python -m ablate.report " + shlex.join(argv))
    except NoJobsFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {out / 'index.md'}")
    return 0


def _with_comparison(attention_fn, jobs: list[Path], image: int):
    """Chain the comparison figure (one row of spatial maps per job) after the single-run attention figure."""
    from ablate.report.attention_run import draw_comparison

    def draw(out: Path) -> list[Path]:
        paths = list(attention_fn(out)) if attention_fn is not None else []
        rows = {_job_label(j): j for j in jobs}
        return [*paths, draw_comparison(rows, Path(out) / "attention_comparison.png", image_index=image)]

    return draw


def _job_label(job: Path) -> str:
    from ablate.runs.files import RunFiles

    result = RunFiles(job).read_result() or {}
    axes = result.get("axes") or {}
    name = f"Cond. DETR ({axes.get('csq', '?')})" if axes.get("csq") not in ("detr", "detr_content") else "DETR"
    return f"{name}\nseed {result.get('seed', '?')}, step {result.get('steps', '?')}"


if __name__ == "__main__":
    sys.exit(main())
