"""Time to embed generated videos and map them with t-SNE (the paper's Fig. 8), and how well they separate.

Run: python -m bench.embeddings [--n 500] [--scheme divided_space_time] [--dataset motion]

Uses the shipped demo model for the scheme and dataset; when there is none, a randomly initialised model of the
"demo" preset, and says so (the timings hold, the separability numbers then mean nothing). Target: features and
t-SNE of 500 videos in under 2 minutes on 2 cores. Generation is timed apart: the app generates a set once.
The seed should be one the model was not trained on.
"""

from __future__ import annotations

import argparse
import time

import torch

from analysis.embeddings import (
    clip_features,
    frame_averaged_features,
    separability,
    tsne,
)
from timesformer import TimeSformer, preset
from timesformer.checkpoints import LoadedModel, load_checkpoint
from timesformer.datasets import class_names, generate
from timesformer.demo import DemoMissing, demo_checkpoint
from timesformer.video import OFFICIAL_NORMALIZATION

TARGET_S = 120.0


def demo_model(scheme: str, dataset: str) -> tuple[LoadedModel, str]:
    """The shipped demo model, or a random one of the demo preset; and a line saying which."""
    try:
        path = demo_checkpoint(scheme, dataset)
    except DemoMissing as missing:
        config = preset("demo", scheme=scheme, num_classes=len(class_names(dataset)))
        model = TimeSformer(config).eval()
        loaded = LoadedModel(model, *OFFICIAL_NORMALIZATION, class_names(dataset), "random")
        return loaded, f"RANDOM weights, demo preset ({missing})"
    return load_checkpoint(path), f"demo checkpoint {path.name}"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--scheme", default="divided_space_time")
    parser.add_argument("--dataset", default="motion", choices=("motion", "appearance"))
    parser.add_argument("--seed", type=int, default=90210)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--frame-averaged", action="store_true", help="also time the per-frame image baseline")
    args = parser.parse_args()

    loaded, source = demo_model(args.scheme, args.dataset)
    config = loaded.config
    print(f"model: {args.scheme}, {source}")
    print(
        f"torch threads: {torch.get_num_threads()}; {args.n} {args.dataset} clips of "
        f"{config.num_frames}x{config.image_size}px, seed {args.seed}"
    )

    clips, generate_s = timed(generate, args.dataset, args.n, args.seed, config.num_frames, config.image_size)
    features, features_s = timed(clip_features, loaded.model, clips.frames, loaded.mean, loaded.std, args.batch_size)
    points, tsne_s = timed(tsne, features, perplexity=args.perplexity)
    score = separability(features, clips.labels, k=args.k)
    total = features_s + tsne_s
    print(f"generate {generate_s:6.1f} s (not counted)")
    print(f"features {features_s:6.1f} s ({args.n / features_s:.0f} clips/s), shape {features.shape}")
    print(f"t-SNE    {tsne_s:6.1f} s, map {points.shape}")
    print(f"total    {total:6.1f} s (target < {TARGET_S:.0f} s: {'met' if total < TARGET_S else 'MISSED'})")
    print(
        f"separability: kNN@{args.k} accuracy {score.knn_accuracy:.3f} (chance {score.chance:.3f}), "
        f"silhouette {score.silhouette:.3f}"
    )
    if args.frame_averaged:
        averaged, averaged_s = timed(
            frame_averaged_features, loaded.model, clips.frames, loaded.mean, loaded.std, args.batch_size
        )
        score = separability(averaged, clips.labels, k=args.k)
        print(
            f"frame-averaged features {averaged_s:6.1f} s: kNN@{args.k} accuracy {score.knn_accuracy:.3f}, "
            f"silhouette {score.silhouette:.3f}"
        )


if __name__ == "__main__":
    main()
