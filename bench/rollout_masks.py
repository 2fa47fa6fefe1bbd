"""Does rollout look at the object? Mass-in-mask ratio and pointing game of every shipped demo model.

Run: python -m bench.rollout_masks [--clips 200] [--seed 2024]

On held-out generated `motion` clips (a seed no model trained on), for each scheme's demo model: the share of
rollout relevance on the moving object divided by the object's share of the clip (1 = chance), and the share of
clips whose most relevant patch touches the object; the naive last-layer CLS attention beside it.
"""

from __future__ import annotations

import argparse
import time

from analysis.faithfulness import EXPLAINERS, evaluate
from timesformer import SCHEMES
from timesformer.checkpoints import load_checkpoint
from timesformer.datasets import generate
from timesformer.demo import demo_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--dataset", default="motion")
    args = parser.parse_args()
    clips = generate(args.dataset, args.clips, seed=args.seed, num_frames=8, size=64)
    print(
        f"{args.clips} held-out {args.dataset} clips (seed {args.seed}); mean object area "
        f"{clips.masks.mean():.1%} of the clip"
    )
    print(f"{'scheme':22s} {'method':26s} {'mass ratio':>10s} {'pointing':>9s} {'seconds':>8s}")
    for scheme in SCHEMES:
        loaded = load_checkpoint(demo_checkpoint(scheme, args.dataset))
        for method, explainer in EXPLAINERS.items():
            start = time.perf_counter()
            result = evaluate(loaded, clips, explainer)
            print(
                f"{scheme:22s} {method:26s} {result.mass_ratio:9.2f}x {result.pointing_hits:9.1%} "
                f"{time.perf_counter() - start:8.1f}"
            )


if __name__ == "__main__":
    main()
