"""Forward-pass speed of our TimeSformer beside Hugging Face transformers, on the same weights and input.

Run: python -m bench.forward [--preset base] [--rounds 5]

Every contender runs once per round, rounds interleaved, so that load from other processes hits all of them
alike; the best time of each is reported (the least disturbed by other processes on a shared machine) and the
ratios are computed from those. The matmul peak is the faster of two large fp32 matrix products (4096 and 3072
square: MKL runs some power-of-two sizes slower on some CPUs, and the peak must not be understated), measured
in the same rounds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Callable

import torch
from transformers import TimesformerForVideoClassification

from timesformer import TimeSformer, preset
from timesformer.checkpoints import load_checkpoint
from timesformer.cost import count_macs
from timesformer.runtime import fast_bf16_available, inference_copy

BF16_TOLERANCE = 0.1
"""Largest |logit difference| accepted between the bf16 path and fp32 (bf16 keeps 8 mantissa bits)."""


def hugging_face_twin(model: TimeSformer) -> tuple[TimesformerForVideoClassification, TimeSformer]:
    """A transformers model with random weights, and ours loaded from its save_pretrained folder."""
    from transformers import TimesformerConfig

    c = model.config
    hf = TimesformerForVideoClassification(TimesformerConfig(
        image_size=c.image_size, patch_size=c.patch_size, num_frames=c.num_frames, hidden_size=c.embed_dim,
        num_hidden_layers=c.depth, num_attention_heads=c.num_heads, intermediate_size=int(c.embed_dim * c.mlp_ratio),
        num_labels=c.num_classes, attention_type=c.scheme,
    )).eval()
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_checkpoint(folder).model
    return hf, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--scheme", default="divided_space_time")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = preset(args.preset, scheme=args.scheme)
    hf, ours = hugging_face_twin(TimeSformer(config))
    video = torch.randn(1, 3, config.num_frames, config.image_size, config.image_size)
    hf_input = video.permute(0, 2, 1, 3, 4).contiguous()
    macs = count_macs(config)["total"]
    matrices = {side: (torch.randn(side, side), torch.randn(side, side)) for side in (4096, 3072)}

    bf16 = fast_bf16_available()
    ours_bf16 = inference_copy(ours, torch.bfloat16) if bf16 else None
    video_bf16 = video.bfloat16()

    def hf_bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hf(pixel_values=hf_input)

    contenders: dict[str, Callable[[], object]] = {
        **{f"matmul fp32 {side}": (lambda a=a, b=b: a @ b) for side, (a, b) in matrices.items()},
        "ours fp32": lambda: ours(video),
        "ours fp32 + attention capture": lambda: ours.inspect(video),
        "transformers fp32": lambda: hf(pixel_values=hf_input),
    }
    if bf16:
        contenders["ours bf16"] = lambda: ours_bf16(video_bf16)
        contenders["transformers bf16 autocast"] = hf_bf16

    times: dict[str, list[float]] = {name: [] for name in contenders}
    with torch.inference_mode():
        for fn in contenders.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        reference = ours(video)
        hf_logits = hf(pixel_values=hf_input).logits
        low = ours_bf16(video_bf16).float() if bf16 else None

    best = {name: min(values) for name, values in times.items()}
    peak = max(2 * side**3 / best[f"matmul fp32 {side}"] for side in matrices)
    achieved = 2 * macs / best["ours fp32"]
    print(f"{args.preset} {args.scheme}: {config.num_frames}x{config.image_size}, batch 1, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds (best seconds)")
    for name, value in best.items():
        print(f"  {name:32s} {value:8.3f} s")
    print(f"  max |ours - transformers| logits fp32: {(reference - hf_logits).abs().max():.2e}")
    print(f"ours vs transformers, fp32:             {best['transformers fp32'] / best['ours fp32']:.2f}x faster (target >= 1.05)")
    print(f"ours fp32 vs this machine's matmul peak: {achieved / 1e9:.0f} / {peak / 1e9:.0f} GFLOP/s = "
          f"{achieved / peak:.0%} (target >= 85%; {macs / 1e9:.1f} G multiply-adds per view)")
    print(f"attention capture vs plain forward:      {best['ours fp32 + attention capture'] / best['ours fp32']:.2f}x the time (target <= 1.25)")
    if bf16:
        agree = bool((low.argmax(-1) == reference.argmax(-1)).all())
        print(f"ours bf16 vs transformers bf16 autocast: {best['transformers bf16 autocast'] / best['ours bf16']:.2f}x faster (target >= 1.3)")
        print(f"ours bf16 vs ours fp32:                  {best['ours fp32'] / best['ours bf16']:.2f}x faster; top-1 agrees: {agree}; "
              f"max |logit diff| {(low - reference).abs().max():.3f} (tolerance {BF16_TOLERANCE})")
    else:
        print("bf16: this CPU has no AMX / AVX512-BF16, so the bf16 path stays off")


if __name__ == "__main__":
    main()
