"""The whole command line: the backend's predict, info and train, and `batch`, which analyses a collection.

    python -m analysis batch videos/ --out runs/val --what predictions,features,rollout --checkpoint model.pyth

`pip install -e .` installs it as the `timesformer` command.
"""

from __future__ import annotations

import argparse
import sys

from timesformer.__main__ import USER_ERRORS, build_parser, positive_int, run
from timesformer.demo import demo_checkpoint

from .batch import ENGINES, BatchError, BatchJob, run_batch, summary_dict


def _batch(args: argparse.Namespace) -> dict:
    checkpoint = args.checkpoint or demo_checkpoint()
    job = BatchJob(str(checkpoint), tuple(filter(None, args.what.split(","))), args.top_k)
    summary = run_batch(
        args.input,
        args.out,
        job,
        engine=args.engine,
        shard_size=args.shard_size,
        check=not args.no_check,
        address=args.address,
        progress=not args.json,
    )
    return summary_dict(summary)


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser("timesformer", __doc__)
    many = commands.add_parser("batch", help="predictions, features and rollout maps of a whole video collection")
    many.add_argument("input", help="a folder of videos, a glob pattern, or a CSV manifest (columns path[, label])")
    many.add_argument("--out", required=True, help="output folder; a rerun resumes it (see analysis/batch_files.py)")
    many.add_argument("--what", default="predictions,features", help="comma-separated: predictions,features,rollout")
    many.add_argument("--checkpoint", help="any checkpoint load_checkpoint reads; default: the divided demo model")
    many.add_argument("--engine", default="local", choices=ENGINES, help="this machine's cores, or Ray Data")
    many.add_argument("--address", help="Ray cluster address (ray engine); default: start Ray on this machine")
    many.add_argument(
        "--shard-size", type=positive_int, default=64, help="videos per output shard, the unit of resuming"
    )
    many.add_argument("--top-k", type=positive_int, default=5)
    many.add_argument(
        "--no-check",
        action="store_true",
        help="skip opening each video in a child process first (faster; a decoder crash then stops the job)",
    )
    many.add_argument("--json", action="store_true")
    many.set_defaults(handler=_batch)
    return run(parser, argv, (*USER_ERRORS, BatchError))


if __name__ == "__main__":
    sys.exit(main())
