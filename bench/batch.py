"""Throughput of `python -m analysis batch`: videos per second of the local and ray engines on this machine,
and the cost of one video split into check / decode / forward / rollout.

Run: python -m bench.batch [--videos 120] [--checked-videos 40] [--preset demo] [--checkpoint PATH] [--skip-ray]

Videos are generated clips written as H.264 (`--frames` x `--size`); the model is a random TimeSformer of
`--preset` (or `--checkpoint`); every run computes predictions, features and rollout. Stage costs are times
on one core (torch 1 thread), one video at a time. Engines are timed from the call until the last row is back
(writing shards takes milliseconds and is left out): "all" is videos / time of the whole run, model loading
and Ray's actor start included; "marginal" is (n - n/2) / (t(n) - t(n/2)), the rate once start-up is paid,
which is what a long job on a cluster sees. Runs with the child-process check use the first
`--checked-videos`. Ray's own start (`ray.init`) is printed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from analysis.batch import BatchJob, VideoAnalyzer
from analysis.batch_files import WHATS, InputVideo, list_videos
from timesformer.checkpoints import OFFICIAL_NORMALIZATION, LoadedModel, save_checkpoint
from timesformer.datasets import generate, write_mp4
from timesformer.decoding import check_in_subprocess
from timesformer.model import TimeSformer, preset

ROOT = Path(__file__).resolve().parents[1]


def make_collection(folder: Path, count: int, frames: int, size: int, preset_name: str) -> tuple[Path, Path]:
    torch.manual_seed(0)
    model = TimeSformer(preset(preset_name, num_classes=6))
    checkpoint = folder / "model.safetensors"
    save_checkpoint(checkpoint, LoadedModel(model, *OFFICIAL_NORMALIZATION, [str(i) for i in range(6)], "ours"),
                    sampling_stride="1")
    videos = folder / "videos"
    videos.mkdir()
    for i, clip in enumerate(generate("motion", count, seed=0, num_frames=frames, size=size).frames):
        write_mp4(clip, videos / f"{i:04d}.mp4")
    return checkpoint, videos


def stage_costs(analyzer: VideoAnalyzer, videos: list[InputVideo]) -> dict[str, float]:
    """Median seconds per video of each stage, one video at a time, torch on one thread."""
    times: dict[str, list[float]] = {"check (child process)": [], "decode + preprocess": [], "forward": [], "rollout": []}

    def timed(name: str, step: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = step()
        times[name].append(time.perf_counter() - start)
        return result

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    analyzer.forward(analyzer.read(videos[0]))  # warm-up
    for video in videos:
        timed("check (child process)", lambda: check_in_subprocess(video.path))
        clip = timed("decode + preprocess", lambda: analyzer.read(video))
        timed("forward", lambda: analyzer.forward(clip))
        timed("rollout", lambda: analyzer.rollout(clip))
    torch.set_num_threads(threads)
    return {name: statistics.median(values) for name, values in times.items()}


def seconds(engine: Callable[[list[InputVideo]], Iterator[dict]], videos: list[InputVideo]) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in engine(videos))
    assert count == len(videos), f"{count} rows for {len(videos)} videos"
    return time.perf_counter() - start


def rates(engine: Callable[[list[InputVideo]], Iterator[dict]], videos: list[InputVideo]) -> str:
    """Videos/s of a whole run, and of its second half once start-up is paid."""
    n, half = len(videos), len(videos) // 2
    whole, first = seconds(engine, videos), seconds(engine, videos[:half])
    marginal = f"{(n - half) / (whole - first):6.2f}" if whole > first else "   n/a (start-up varies more than the work)"
    return f"all {n / whole:6.2f}   marginal {marginal}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=120)
    parser.add_argument("--checked-videos", type=int, default=40, help="videos of the runs with the check")
    parser.add_argument("--frames", type=int, default=32, help="frames per generated video")
    parser.add_argument("--size", type=int, default=128, help="generated video side in pixels")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--checkpoint", help="a real checkpoint instead of a random --preset model")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, folder = make_collection(Path(tmp), args.videos, args.frames, args.size, args.preset)
        job = BatchJob(args.checkpoint or str(checkpoint), WHATS)
        videos = list_videos(folder)
        analyzer = VideoAnalyzer(job, check=False)
        config = analyzer.loaded.config
        print(f"{args.videos} videos of {args.frames} frames at {args.size}x{args.size}; model {config.scheme} "
              f"{config.num_frames}x{config.image_size}, dim {config.embed_dim}, depth {config.depth}; {cpus} CPUs; "
              f"torch {torch.get_num_threads()} threads")
        costs = stage_costs(analyzer, videos[:10])
        print(f"per video, one at a time, torch 1 thread (median ms of {min(10, len(videos))}):")
        for name, cost in costs.items():
            print(f"  {name:24s} {cost * 1e3:8.1f}")
        print(f"  {'total, checked':24s} {sum(costs.values()) * 1e3:8.1f}")

        local = {check: (lambda part, check=check: VideoAnalyzer(job, check).analyze(part, readers=cpus))
                 for check in (False, True)}
        checked = videos[: args.checked_videos]
        print(f"engines, videos/s over {len(videos)} videos (check off) and {len(checked)} (check on):")
        print(f"  local, check off        {rates(local[False], videos)}")
        print(f"  local, check on         all {len(checked) / seconds(local[True], checked):6.2f}")
        if args.skip_ray:
            return
        import ray

        from analysis import ray_engine

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        print(f"  (ray.init: {time.perf_counter() - start:.1f} s, not counted)")
        on_ray = {check: (lambda part, check=check: ray_engine.analyze(part, job, check)) for check in (False, True)}
        print(f"  ray {cpus} actors, check off {rates(on_ray[False], videos)}")
        print(f"  ray {cpus} actors, check on  all {len(checked) / seconds(on_ray[True], checked):6.2f}")
        ray.shutdown()


if __name__ == "__main__":
    main()
