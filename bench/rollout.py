"""Cost of attention rollout beside a plain forward pass, and its peak memory at TimeSformer-HR size.

Run: python -m bench.rollout [--rounds 3] [--skip-hr]

Base 8x224: times of a plain forward, of the forward that keeps head-fused maps, and of the rollout
propagation itself, interleaved over rounds (median). HR 16x448: peak resident memory of a child process that
runs one rollout (random weights), against the 4 GiB target.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from analysis.rollout import RolloutSettings, fused_attention, roll_out, rollout
from timesformer import TimeSformer, preset

ROOT = Path(__file__).resolve().parents[1]


def hr_peak_memory() -> None:
    """Child-process body: one HR rollout, then print the peak RSS in GiB."""
    model = TimeSformer(preset("hr")).eval()
    video = torch.randn(1, 3, 16, 448, 448)
    start = time.perf_counter()
    maps = rollout(model, video).maps
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{peak_gib:.2f} {time.perf_counter() - start:.1f} {tuple(maps.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-hr", action="store_true")
    parser.add_argument("--hr-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hr_child:
        return hr_peak_memory()
    torch.manual_seed(0)
    model = TimeSformer(preset("base")).eval()
    video = torch.randn(1, 3, 8, 224, 224)
    settings = RolloutSettings()
    grid = model.grid_of(video)
    times: dict[str, list[float]] = {"plain forward": [], "forward keeping fused maps": [], "rollout propagation": []}
    with torch.inference_mode():
        model(video)
        for _ in range(args.rounds):
            start = time.perf_counter()
            model(video)
            times["plain forward"].append(time.perf_counter() - start)
            start = time.perf_counter()
            _, fused = fused_attention(model, video, settings)
            times["forward keeping fused maps"].append(time.perf_counter() - start)
            start = time.perf_counter()
            roll_out(fused, model.block_type.stages, False, grid, 1, settings)
            times["rollout propagation"].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"base divided 8x224, batch 1, {args.rounds} interleaved rounds (median seconds)")
    for name, value in median.items():
        print(f"  {name:28s} {value:7.3f} s")
    ratio = median["rollout propagation"] / median["plain forward"]
    print(f"rollout propagation / plain forward: {ratio:.3f} (target < 1)")
    print(
        f"whole rollout / plain forward:       "
        f"{(median['forward keeping fused maps'] + median['rollout propagation']) / median['plain forward']:.2f}"
    )
    if not args.skip_hr:
        done = subprocess.run([sys.executable, __file__, "--hr-child"], capture_output=True, text=True, check=True)
        peak, seconds, shape = done.stdout.split(maxsplit=2)
        print(f"HR 16x448 rollout: peak RSS {float(peak):.2f} GiB (target < 4), {seconds} s, maps {shape.strip()}")


if __name__ == "__main__":
    main()
