"""Forward-pass speed of our TimeSformer beside Hugging Face transformers, on the same weights and input.

Run: python -m bench.forward [--preset base] [--rounds 5]      (python -m bench.forward --smoke: small, 1 round)

Every contender runs once per round, rounds interleaved, so that load from other processes hits all of them
alike; the best time of each is reported (the least disturbed by other processes on a shared machine) and the
ratios are computed from those. The matmul peak is the faster of two large fp32 matrix products (4096 and 3072
square: MKL runs some power-of-two sizes slower on some CPUs, and the peak must not be understated), measured
in the same rounds. On a CPU with fast bf16 every bf16 path of `timesformer.runtime` is timed beside
transformers' bf16 autocast, and the path this machine chose (timed once, remembered) is named.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable

import torch
from transformers import TimesformerForVideoClassification

from timesformer import TimeSformer, preset
from timesformer.checkpoints import load_checkpoint
from timesformer.cost import count_macs
from timesformer.runtime import (
    BF16_PATHS,
    BF16_TOLERANCE,
    CHOICES_FILE,
    bf16_copy,
    choose_bf16_path,
    cpu_flags,
    cpu_model,
    fast_bf16_available,
    machine_key,
)

TARGETS = {"fp32": 1.05, "peak": 0.80, "capture": 1.25, "bf16": 1.2}
"""ours fp32 / transformers fp32, ours fp32 / matmul peak, capture / plain forward, ours bf16 / transformers bf16."""


def hugging_face_twin(model: TimeSformer) -> tuple[TimesformerForVideoClassification, TimeSformer]:
    """A transformers model with random weights, and ours loaded from its save_pretrained folder."""
    from transformers import TimesformerConfig

    c = model.config
    hf = TimesformerForVideoClassification(
        TimesformerConfig(
            image_size=c.image_size,
            patch_size=c.patch_size,
            num_frames=c.num_frames,
            hidden_size=c.embed_dim,
            num_hidden_layers=c.depth,
            num_attention_heads=c.num_heads,
            intermediate_size=int(c.embed_dim * c.mlp_ratio),
            num_labels=c.num_classes,
            attention_type=c.scheme,
        )
    ).eval()
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = load_checkpoint(folder).model
    return hf, ours


def machine_line() -> str:
    """The CPU and the flags that decide the kernels."""
    flags = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512f", "avx2", "avx_vnni")))
    return f"{cpu_model()}; flags {' '.join(flags) or 'none of amx/avx512/avx2'}; torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--scheme", default="divided_space_time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="preset small, 1 round: checks the script, not speed")
    args = parser.parse_args()
    if args.smoke:
        args.preset, args.rounds = "small", 1
    torch.manual_seed(0)
    config = preset(args.preset, scheme=args.scheme)
    hf, ours = hugging_face_twin(TimeSformer(config))
    video = torch.randn(1, 3, config.num_frames, config.image_size, config.image_size)
    hf_input = video.permute(0, 2, 1, 3, 4).contiguous()
    macs = count_macs(config)["total"]
    matrices = {side: (torch.randn(side, side), torch.randn(side, side)) for side in (4096, 3072)}
    print(machine_line())

    bf16 = fast_bf16_available()
    video_bf16 = video.bfloat16()
    paths = {}
    if bf16:
        start = time.perf_counter()
        chosen = choose_bf16_path(ours)
        probe = json.loads(CHOICES_FILE.read_text()).get(machine_key(config), {}) if CHOICES_FILE.exists() else {}
        print(
            f"bf16 path chosen for this machine and model: {chosen} ({time.perf_counter() - start:.1f} s to "
            f"choose; probe seconds {probe.get('seconds', 'n/a')}; remembered in {CHOICES_FILE})"
        )
        paths = {path: bf16_copy(ours, path) for path in BF16_PATHS}

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
        contenders |= {f"ours bf16 {path}": (lambda m=m: m(video_bf16)) for path, m in paths.items()}
        contenders["transformers bf16 autocast"] = hf_bf16

    times: dict[str, list[float]] = {name: [] for name in contenders}
    with torch.inference_mode():
        for fn in contenders.values():  # warm-up (and the compiled path's compile)
            fn()
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        reference = ours(video)
        hf_logits = hf(pixel_values=hf_input).logits
        low = {path: m(video_bf16).float() for path, m in paths.items()}

    best = {name: min(values) for name, values in times.items()}
    peak = max(2 * side**3 / best[f"matmul fp32 {side}"] for side in matrices)
    achieved = 2 * macs / best["ours fp32"]
    print(
        f"{args.preset} {args.scheme}: {config.num_frames}x{config.image_size}, batch 1, "
        f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds (best seconds)"
    )
    for name, value in best.items():
        print(f"  {name:32s} {value:8.3f} s")
    print(f"  max |ours - transformers| logits fp32: {(reference - hf_logits).abs().max():.2e}")
    print(
        f"ours vs transformers, fp32:             {best['transformers fp32'] / best['ours fp32']:.2f}x faster "
        f"(target >= {TARGETS['fp32']})"
    )
    print(
        f"ours fp32 vs this machine's matmul peak: {achieved / 1e9:.0f} / {peak / 1e9:.0f} GFLOP/s = "
        f"{achieved / peak:.0%} (target >= {TARGETS['peak']:.0%}; {macs / 1e9:.1f} G multiply-adds per view)"
    )
    print(
        f"attention capture vs plain forward:      {best['ours fp32 + attention capture'] / best['ours fp32']:.2f}x "
        f"the time (target <= {TARGETS['capture']})"
    )
    if not bf16:
        print("bf16: this CPU has no AMX / AVX512-BF16, so the bf16 path stays off")
        return
    autocast = best["transformers bf16 autocast"]
    print(f"bf16 paths vs transformers bf16 autocast ({autocast:.3f} s), and vs ours fp32:")
    for path, logits in low.items():
        mark = "  <- chosen" if path == chosen else ""
        agree = bool((logits.argmax(-1) == reference.argmax(-1)).all())
        print(
            f"  {path:9s} {autocast / best[f'ours bf16 {path}']:5.2f}x faster; "
            f"{best['ours fp32'] / best[f'ours bf16 {path}']:5.2f}x ours fp32; top-1 agrees: {agree}; "
            f"max |logit diff| {(logits - reference).abs().max():.3f} (tolerance {BF16_TOLERANCE}){mark}"
        )
    fastest = min(paths, key=lambda path: best[f"ours bf16 {path}"])
    print(
        f"ours bf16 ({chosen}) vs transformers bf16 autocast: {autocast / best[f'ours bf16 {chosen}']:.2f}x faster "
        f"(target >= {TARGETS['bf16']}); fastest path in this run: {fastest}"
    )


if __name__ == "__main__":
    main()
