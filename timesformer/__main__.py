"""Command line: `python -m timesformer predict VIDEO`, `info CHECKPOINT`, `train --dataset ... --out PATH`.

Collection-wide analysis computes rollout, which lives a layer up: `python -m analysis batch INPUT --out DIR`
(or the `timesformer` command that `pip install -e .` puts on the PATH, which has all four).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace

import torch

from . import train
from .checkpoints import CheckpointError, load_checkpoint
from .cost import MemoryBudgetError
from .decoding import VideoError
from .demo import DemoMissing, demo_checkpoint
from .inference import predict, read_clip
from .inflate import InflationError
from .info import model_facts
from .model import PRESETS, preset
from .runtime import PrecisionError, inference_copy
from .schemes import SCHEMES
from .train_config import TrainError, add_arguments


def _predict(args: argparse.Namespace) -> dict:
    path = args.checkpoint or demo_checkpoint(args.scheme)
    loaded = load_checkpoint(path)
    if args.bf16:
        loaded = replace(loaded, model=inference_copy(loaded.model, torch.bfloat16))
    clip = read_clip(args.video, loaded, crops=args.crops, untrusted=True)
    top = predict(loaded, clip.tensor).top(args.top_k)
    return {
        "video": args.video,
        "checkpoint": str(path),
        "scheme": loaded.config.scheme,
        "crops": args.crops,
        "precision": "bfloat16" if args.bf16 else "float32",
        "frames": clip.indices,
        "top": [{"label": label, "probability": round(p, 4)} for label, p in top],
    }


def _info(args: argparse.Namespace) -> dict:
    if args.checkpoint:
        loaded = load_checkpoint(args.checkpoint)
        return {"format": loaded.source_format, **model_facts(loaded.config), "mean": loaded.mean, "std": loaded.std}
    return model_facts(preset(args.preset, scheme=args.scheme))


def _train(args: argparse.Namespace) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return train.run(args)


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    elif "top" in result:
        print(f"{result['video']} ({result['scheme']}, {result['crops']} crop(s), frames {result['frames']})")
        for row in result["top"]:
            print(f"  {row['probability']:7.2%}  {row['label']}")
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value:,}" if isinstance(value, int) else f"{key:>32}: {value}")


USER_ERRORS = (CheckpointError, VideoError, MemoryBudgetError, DemoMissing, TrainError, InflationError, PrecisionError)
"""What a person can cause and fix: one line on stderr and exit code 2, never a traceback."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser(
    prog: str = "python -m timesformer", description: str | None = __doc__
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The parser of predict, info and train, and its subcommands (the analysis CLI adds `batch`)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="top-k labels of a video")
    run.add_argument("video")
    run.add_argument(
        "--checkpoint", help="official .pyth, Hugging Face folder, MMAction2 .pth or ours; default: demo model"
    )
    run.add_argument("--scheme", default="divided_space_time", choices=list(SCHEMES), help="demo model to use")
    run.add_argument("--crops", type=int, default=1, choices=[1, 3], help="spatial crops averaged (paper: 3)")
    run.add_argument("--top-k", type=positive_int, default=5)
    run.add_argument("--bf16", action="store_true", help="bfloat16 inference; only on CPUs with AMX or AVX512-BF16")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=_predict)
    about = commands.add_parser("info", help="scheme, sizes, parameters and GFLOPs of a checkpoint or preset")
    about.add_argument("checkpoint", nargs="?")
    about.add_argument("--preset", default="base", choices=list(PRESETS))
    about.add_argument("--scheme", default="divided_space_time", choices=list(SCHEMES))
    about.add_argument("--json", action="store_true")
    about.set_defaults(handler=_info)
    learn = commands.add_parser("train", help="train a model on a generated dataset (see timesformer/train.py)")
    add_arguments(learn)
    learn.add_argument("--json", action="store_true")
    learn.set_defaults(handler=_train)
    return parser, commands


def run(parser: argparse.ArgumentParser, argv: list[str] | None, errors: tuple[type[Exception], ...]) -> int:
    """Parse, run the chosen command, print its result; a user error is one line and exit code 2."""
    args = parser.parse_args(argv)
    try:
        _print(args.handler(args), args.json)
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    return run(parser, argv, USER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
