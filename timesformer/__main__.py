"""Command line: `python -m timesformer predict VIDEO` and `python -m timesformer info CHECKPOINT`."""

from __future__ import annotations

import argparse
import json
import sys

from .checkpoints import CheckpointError, load_checkpoint
from .cost import MemoryBudgetError
from .demo import DemoMissing, demo_checkpoint
from .inference import predict, read_clip
from .info import model_facts
from .model import preset
from .schemes import SCHEMES
from .video import VideoError


def _predict(args: argparse.Namespace) -> dict:
    path = args.checkpoint or demo_checkpoint(args.scheme)
    loaded = load_checkpoint(path)
    clip = read_clip(args.video, loaded, crops=args.crops, untrusted=True)
    top = predict(loaded, clip.tensor).top(args.top_k)
    return {
        "video": args.video,
        "checkpoint": str(path),
        "scheme": loaded.config.scheme,
        "crops": args.crops,
        "frames": clip.indices,
        "top": [{"label": label, "probability": round(p, 4)} for label, p in top],
    }


def _info(args: argparse.Namespace) -> dict:
    if args.checkpoint:
        loaded = load_checkpoint(args.checkpoint)
        return {"format": loaded.source_format, **model_facts(loaded.config), "mean": loaded.mean, "std": loaded.std}
    return model_facts(preset(args.preset, scheme=args.scheme))


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
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=_predict)
    about = commands.add_parser("info", help="scheme, sizes, parameters and GFLOPs of a checkpoint or preset")
    about.add_argument("checkpoint", nargs="?")
    about.add_argument("--preset", default="base")
    about.add_argument("--scheme", default="divided_space_time", choices=list(SCHEMES))
    about.add_argument("--json", action="store_true")
    about.set_defaults(handler=_info)
    args = parser.parse_args(argv)
    try:
        _print(args.handler(args), args.json)
    except (CheckpointError, VideoError, MemoryBudgetError, DemoMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
