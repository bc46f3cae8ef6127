"""python -m ablate.attention JOB_DIR [--image N ...] [--layer L]: draw a finished job's decoder cross-attention
maps into JOB_DIR/attention/ (image<N>.png, image<N>.npz, index.json); the report links what it finds there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ablate.attention",
                                     description="Draw a trained job's cross-attention maps into its folder.")
    parser.add_argument("job", type=Path, metavar="JOB_DIR", help="a job folder with checkpoint.pt and .hydra/")
    parser.add_argument("--image", type=int, nargs="+", default=[0], metavar="N",
                        help="validation image(s) to draw (default 0)")
    parser.add_argument("--layer", type=int, default=-1, help="decoder layer, 1-based or negative (default: last)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every image was drawn; 2 with one `ablate:` line when the job or an image cannot be drawn."""
    args = parse_args(argv)
    from ablate.attention.run import write_attention

    layer = args.layer - 1 if args.layer > 0 else args.layer
    try:
        for image in args.image:
            print(f"attention maps written to {write_attention(args.job, image, layer)}")
    except (FileNotFoundError, IndexError, ValueError, KeyError, RuntimeError) as exc:
        print(f"ablate: {args.job}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
