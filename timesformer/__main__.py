"""Command line: `python -m timesformer predict VIDEO`, `info CHECKPOINT`, `train --dataset ... --out PATH`
and `batch INPUT --out DIR`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace

import torch

from . import train
from .batch import ENGINES, Analysis, BatchError, run_batch, summary_dict
from .checkpoints import CheckpointError, load_checkpoint
from .cost import MemoryBudgetError
from .demo import DemoMissing, demo_checkpoint
from .inference import predict, read_clip
from .inflate import InflationError
from .info import model_facts
from .model import preset
from .runtime import PrecisionError, inference_copy
from .schemes import SCHEMES
from .video import VideoError


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


def _batch(args: argparse.Namespace) -> dict:
    checkpoint = args.checkpoint or demo_checkpoint()
    analysis = Analysis(str(checkpoint), tuple(filter(None, args.what.split(","))), args.top_k)
    summary = run_batch(args.input, args.out, analysis, engine=args.engine, shard_size=args.shard_size,
                        check=not args.no_check, address=args.address, progress=not args.json)
    return summary_dict(summary)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timesformer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="top-k labels of a video")
    run.add_argument("video")
    run.add_argument("--checkpoint", help="official .pyth, Hugging Face folder, MMAction2 .pth or ours; default: demo model")
    run.add_argument("--scheme", default="divided_space_time", choices=list(SCHEMES), help="demo model to use")
    run.add_argument("--crops", type=int, default=1, choices=[1, 3], help="spatial crops averaged (paper: 3)")
    run.add_argument("--top-k", type=int, default=5)
    run.add_argument("--bf16", action="store_true", help="bfloat16 inference; only on CPUs with AMX or AVX512-BF16")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=_predict)
    about = commands.add_parser("info", help="scheme, sizes, parameters and GFLOPs of a checkpoint or preset")
    about.add_argument("checkpoint", nargs="?")
    about.add_argument("--preset", default="base")
    about.add_argument("--scheme", default="divided_space_time", choices=list(SCHEMES))
    about.add_argument("--json", action="store_true")
    about.set_defaults(handler=_info)
    learn = commands.add_parser("train", help="train a model on a generated dataset (see timesformer/train.py)")
    train.add_arguments(learn)
    learn.add_argument("--json", action="store_true")
    learn.set_defaults(handler=_train)
    many = commands.add_parser("batch", help="predictions, features and rollout maps of a whole video collection")
    many.add_argument("input", help="a folder of videos, a glob pattern, or a CSV manifest (columns path[, label])")
    many.add_argument("--out", required=True, help="output folder; a rerun resumes it (see timesformer/batch.py)")
    many.add_argument("--what", default="predictions,features", help="comma-separated: predictions,features,rollout")
    many.add_argument("--checkpoint", help="any checkpoint load_checkpoint reads; default: the divided demo model")
    many.add_argument("--engine", default="local", choices=ENGINES, help="this machine's cores, or Ray Data")
    many.add_argument("--address", help="Ray cluster address (ray engine); default: start Ray on this machine")
    many.add_argument("--shard-size", type=int, default=64, help="videos per output shard, the unit of resuming")
    many.add_argument("--top-k", type=int, default=5)
    many.add_argument("--no-check", action="store_true",
                      help="skip opening each video in a child process first (faster; a decoder crash then stops the job)")
    many.add_argument("--json", action="store_true")
    many.set_defaults(handler=_batch)
    args = parser.parse_args(argv)
    try:
        _print(args.handler(args), args.json)
    except (CheckpointError, VideoError, MemoryBudgetError, DemoMissing, train.TrainError, InflationError, BatchError,
            PrecisionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
