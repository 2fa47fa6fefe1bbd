"""Throughput of `python -m analysis batch`, as ratios measured side by side in one run.

Run: python -m bench.batch [--videos 24] [--size 1280x720] [--seconds 10] [--skip-ray]   (--smoke: small and short)

1. Real-resolution videos (generated H.264, `--size`, `--seconds` at 30 fps, the official 8x32 sampling) through a
   ViT-B (`--preset base`, random weights, or `--checkpoint`): the plain loop (decode, then transformers' model,
   one video at a time, fp32) against the batch analyzer (decoding overlapped with the forward, bf16 where this
   CPU has it fast). Target: >= 1.3x the plain loop's videos/s.
2. Small generated videos through the demo-size model: the local engine against the ray engine on this machine.
   Target: ray >= 0.8x local. "all" is videos / time of the whole run, model loading and the start of Ray's
   workers included (`ray.init` is not); "marginal" is (n - n/2) / (t(n) - t(n/2)), the rate once start-up is
   paid, which is what a long job on a cluster sees.
Predictions and features, no child-process check (the plain loop has none either; it costs about 0.5 s a video).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from analysis.batch import BatchJob, VideoAnalyzer
from analysis.batch_files import InputVideo, list_videos
from bench.forward import hugging_face_twin, machine_line
from timesformer.checkpoints import LoadedModel, load_checkpoint, save_checkpoint
from timesformer.datasets import generate, write_mp4
from timesformer.inference import read_clip
from timesformer.model import TimeSformer, preset
from timesformer.runtime import fast_bf16_available
from timesformer.video import OFFICIAL_NORMALIZATION

TARGETS = {"batch": 1.3, "ray": 0.8}
WHAT = ("predictions", "features")


def write_real_video(path: Path, width: int, height: int, seconds: float, seed: int) -> None:
    """A panning view over a smooth random texture, H.264 at 30 fps (keyframe every 250 frames, as x264's
    default): decoding costs what a camera video of that size costs."""
    rng = np.random.default_rng(seed)
    texture = cv2.resize(
        rng.integers(0, 256, (height // 8, width // 4, 3), np.uint8), (2 * width, height), interpolation=cv2.INTER_CUBIC
    )
    frames = round(30 * seconds)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for t in range(frames):
            frame = texture[:, t * width // frames : t * width // frames + width]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def real_collection(folder: Path, count: int, size: tuple[int, int], seconds: float, distinct: int = 3) -> Path:
    """`count` videos, copies of `distinct` generated ones (decoding a copy costs as much as the original)."""
    folder.mkdir()
    originals = [folder / f"source{i}.mp4" for i in range(min(distinct, count))]
    for i, path in enumerate(originals):
        write_real_video(path, *size, seconds, seed=i)
    for i in range(len(originals), count):
        os.link(originals[i % len(originals)], folder / f"copy{i:04d}.mp4")
    return folder


def save_model(path: Path, model: TimeSformer, stride: int) -> Path:
    labels = [f"class {i}" for i in range(model.config.num_classes)]
    save_checkpoint(path, LoadedModel(model, *OFFICIAL_NORMALIZATION, labels, "ours"), sampling_stride=str(stride))
    return path


def seconds(rows: Callable[[list[InputVideo]], Iterator[dict]], videos: list[InputVideo]) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in rows(videos))
    assert count == len(videos), f"{count} rows for {len(videos)} videos"
    return time.perf_counter() - start


def rates(rows: Callable[[list[InputVideo]], Iterator[dict]], videos: list[InputVideo]) -> tuple[float, float]:
    """Videos/s of a whole run, and of its second half once start-up is paid (nan if start-up varied more)."""
    n, half = len(videos), len(videos) // 2
    whole, first = seconds(rows, videos), seconds(rows, videos[:half])
    return n / whole, (n - half) / (whole - first) if whole > first else float("nan")


def plain_loop(hf, analyzer: VideoAnalyzer) -> Callable[[list[InputVideo]], Iterator[dict]]:
    """Decode, then transformers' forward, one video at a time: what a script without this package does."""

    def rows(videos: list[InputVideo]) -> Iterator[dict]:
        for video in videos:
            clip = read_clip(video.path, analyzer.loaded)
            with torch.inference_mode():
                probabilities = hf(pixel_values=clip.tensor.permute(0, 2, 1, 3, 4)).logits.softmax(-1)[0]
            yield {"index": video.index, "top": probabilities.topk(5).indices.tolist()}

    return rows


def batch_target(args: argparse.Namespace, root: Path, cpus: int) -> None:
    torch.manual_seed(0)
    config = load_checkpoint(args.checkpoint).config if args.checkpoint else preset(args.preset)
    hf, ours = hugging_face_twin(TimeSformer(config))  # for a real checkpoint, transformers' twin of its shape
    checkpoint = Path(args.checkpoint) if args.checkpoint else save_model(root / "vit.safetensors", ours, 32)
    folder = real_collection(root / "real", args.videos, args.size, args.seconds)
    videos = list_videos(folder)
    precision = "bfloat16" if fast_bf16_available() else "float32"
    start = time.perf_counter()
    analyzer = VideoAnalyzer(BatchJob(str(checkpoint), WHAT, precision=precision), check=False)
    config = analyzer.loaded.config
    print(
        f"1. {len(videos)} videos of {args.size[0]}x{args.size[1]}, {args.seconds:g} s at 30 fps; model "
        f"{config.scheme} {config.num_frames}x{config.image_size} dim {config.embed_dim} depth {config.depth}; "
        f"ours in {precision} ({getattr(analyzer.model, 'bf16_path', 'fp32')} path, set up in "
        f"{time.perf_counter() - start:.1f} s); {cpus} CPUs, torch {torch.get_num_threads()} threads"
    )
    loop = plain_loop(hf, analyzer)
    ours_rows = lambda part: analyzer.analyze(part, readers=cpus)  # noqa: E731 - the engine, as run_batch calls it
    for warm in (loop, ours_rows):
        seconds(warm, videos[:1])
    start = time.perf_counter()
    read_clip(videos[0].path, analyzer.loaded)
    decode = time.perf_counter() - start
    plain = len(videos) / seconds(loop, videos)
    overlapped = len(videos) / seconds(ours_rows, videos)
    print(f"   decode + preprocess one video: {decode:.2f} s")
    print(f"   plain loop (decode, then transformers fp32): {plain:6.2f} videos/s")
    print(f"   batch analyzer (overlapped, {precision}):     {overlapped:6.2f} videos/s")
    if precision != "float32":  # what overlapping alone gives, as on a CPU without fast bf16
        fp32 = VideoAnalyzer(BatchJob(str(checkpoint), WHAT), check=False)
        alone = len(videos) / seconds(lambda part: fp32.analyze(part, readers=cpus), videos)
        print(f"   batch analyzer (overlapped, float32):       {alone:6.2f} videos/s = {alone / plain:.2f}x the loop")
    print(f"   batch analyzer vs plain loop: {overlapped / plain:.2f}x (target >= {TARGETS['batch']})")


def ray_target(args: argparse.Namespace, root: Path, cpus: int) -> None:
    torch.manual_seed(0)
    checkpoint = save_model(root / "demo.safetensors", TimeSformer(preset("demo", num_classes=6)), 1)
    folder = root / "small"
    folder.mkdir()
    for i, frames in enumerate(generate("motion", args.small_videos, seed=0, num_frames=32, size=128).frames):
        write_mp4(frames, folder / f"{i:04d}.mp4")
    videos = list_videos(folder)
    job = BatchJob(str(checkpoint), WHAT)
    local_rows = lambda part: VideoAnalyzer(job, check=False).analyze(part, readers=cpus)  # noqa: E731
    print(f"2. {len(videos)} videos of 32 frames at 128x128, demo model, fp32; videos/s (all, marginal):")
    local = rates(local_rows, videos)
    print(f"   local           {local[0]:6.2f} {local[1]:6.2f}")
    if args.skip_ray:
        return
    import ray

    from analysis import ray_engine

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    print(f"   (ray.init: {time.perf_counter() - start:.1f} s, not counted)")
    try:
        remote = rates(lambda part: ray_engine.analyze(part, job, check=False), videos)
    finally:
        ray.shutdown()
    print(f"   ray, {cpus} CPUs   {remote[0]:6.2f} {remote[1]:6.2f}")
    print(
        f"   ray vs local: {remote[0] / local[0]:.2f}x all, {remote[1] / local[1]:.2f}x marginal "
        f"(target >= {TARGETS['ray']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=24, help="real-resolution videos of part 1")
    parser.add_argument("--size", default="1280x720", help="their width x height")
    parser.add_argument("--seconds", type=float, default=10.0, help="their duration")
    parser.add_argument("--preset", default="base", help="model of part 1")
    parser.add_argument("--checkpoint", help="a real checkpoint for part 1 instead of a random --preset model")
    parser.add_argument("--small-videos", type=int, default=400, help="videos of part 2")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script, not speed")
    args = parser.parse_args()
    if args.smoke:
        args.videos, args.size, args.seconds, args.preset, args.small_videos = 4, "640x360", 3.0, "small", 24
    args.size = tuple(int(side) for side in args.size.split("x"))
    cpus = os.cpu_count() or 1
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        batch_target(args, Path(tmp), cpus)
        ray_target(args, Path(tmp), cpus)


if __name__ == "__main__":
    main()
