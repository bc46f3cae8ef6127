"""python -m ablate.report DIR... [--out OUT] [--baseline OLD...] [--wandb ENTITY/PROJECT] [--no-wandb]
[--attention-run JOBDIR] [--compare-attention JOBDIR...] [--image N] [--title T]"""

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
    parser.add_argument("--baseline", nargs="+", type=Path, metavar="OLD", default=None,
                        help="another sweep's folders: the same variants side by side with the difference and its "
                             "interval (baseline.md), to check a change of code or protocol")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", default=None,
                        help="also list the project's W&B runs and log the report as a W&B run")
    parser.add_argument("--no-wandb", action="store_true", help="never touch W&B, even with --wandb")
    parser.add_argument("--attention-run", type=Path, metavar="JOBDIR", default=None,
                        help="include this job's attention maps (drawn by `python -m ablate.attention JOBDIR`)")
    parser.add_argument("--compare-attention", nargs="+", type=Path, metavar="JOBDIR", default=None,
                        help="these jobs' spatial attention maps side by side over one validation image "
                             "(e.g. DETR and Conditional DETR trained for the same steps: the paper's Figure 1), "
                             "from the maps `python -m ablate.attention` saved in each job")
    parser.add_argument("--image", type=int, default=0, help="validation image of the attention figures")
    parser.add_argument("--title", default=None, help="report title")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report; 0 even when some jobs failed (the report lists them), 2 when no job folder exists."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from ablate.report.build import write_report

    try:
        out = write_report(args.dirs, args.out, title=args.title,
                           wandb=None if args.no_wandb else args.wandb, attention_fn=_attention_fn(args),
                           command="python -m ablate.report " + shlex.join(argv), baseline=args.baseline)
    except NoJobsFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {out / 'index.md'}")
    return 0


def _attention_fn(args: argparse.Namespace):
    """The report hook copying/redrawing attention figures from job files; None when none was asked for."""
    from ablate.report.job_figures import NoAttentionFiles, compare_attention, copy_attention

    if args.attention_run is None and not args.compare_attention:
        return None

    def draw(out: Path) -> list[Path]:
        paths = []
        try:
            if args.attention_run is not None:
                paths.append(copy_attention(args.attention_run, args.image, out))
            if args.compare_attention:
                paths.append(compare_attention(args.compare_attention, args.image, out))
        except NoAttentionFiles as exc:
            print(f"warning: no attention maps: {exc}", file=sys.stderr)
        return paths

    return draw


if __name__ == "__main__":
    sys.exit(main())
