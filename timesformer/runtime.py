"""Where the model runs: CPU features decide whether bf16 is worth it, a short timing decides how to run it.

bf16 runs only where the CPU has bf16 matmuls in hardware (AMX or AVX512-BF16), detected at run time, never
assumed. Which way of running it is fastest differs between CPUs (oneDNN's fused matmuls win on AMX, not
necessarily elsewhere), so the first bf16 copy of a model on a machine times every way in BF16_PATHS on one
clip and remembers the fastest one that agrees with fp32 in CHOICES_FILE, keyed by CPU model, flags, threads,
torch version and the model's shape. The environment variable named by FORCE_PATH skips the timing.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

from .model import AttentionObserver, TimeSformer, TimeSformerConfig
from .schemes import Mlp

log = logging.getLogger(__name__)


class PrecisionError(RuntimeError):
    """The asked-for precision cannot run fast on this machine."""


BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
BF16_PATHS = ("onednn", "bf16", "autocast", "compiled")
"""The ways to run bf16: bf16 weights with oneDNN's fused linear layers, plain bf16 weights, fp32 weights under
autocast (transformers' way), and bf16 weights in a graph compiled by inductor (kept on disk, so compiled once)."""
BF16_TOLERANCE = 0.1
"""Largest |logit difference| from fp32 accepted for a bf16 path (bf16 keeps 8 mantissa bits)."""
CACHE_DIR = Path.home() / ".cache" / "timesformer-explorer"
CHOICES_FILE = CACHE_DIR / "bf16_paths.json"
FORCE_PATH = "TIMESFORMER_BF16_PATH"
PROBE_ROUNDS = 3


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def cpu_flags() -> frozenset[str]:
    """The feature flags the kernel reports for this CPU."""
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_model() -> str:
    return _cpuinfo().get("model name", "unknown CPU")


def fast_bf16_available() -> bool:
    """True where bf16 matmuls run in hardware (AMX or AVX512-BF16) through oneDNN; elsewhere bf16 is emulated
    and slower than fp32."""
    return bool(BF16_FLAGS & cpu_flags()) and torch.backends.mkldnn.is_available()


# --- the kernels and model variants of the bf16 paths ---


def onednn_linear(x: Tensor, layer: nn.Linear, activation: str = "none") -> Tensor:
    """`activation(layer(x))` in one oneDNN matmul: bias and activation are applied as the output tiles are
    written, not by extra passes over the output."""
    algorithm = "none" if activation == "gelu" else ""  # "none": exact erf GELU, as nn.GELU()
    return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, activation, [], algorithm)


class OneDnnLinear(nn.Linear):
    """nn.Linear through `onednn_linear`; same parameters and state-dict keys."""

    def forward(self, x: Tensor) -> Tensor:
        return onednn_linear(x, self)


class OneDnnMlp(Mlp):
    """The MLP with GELU fused into fc1's matmul; same parameters and state-dict keys."""

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(onednn_linear(x, self.fc1, "gelu"))


def use_onednn_kernels(model: nn.Module) -> nn.Module:
    """Switch `model`'s linear layers and MLPs, in place, to the fused oneDNN kernels above. For bf16 only: in
    fp32 MKL's own matmul is the faster one."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDnnLinear
        elif type(module) is Mlp:
            module.__class__ = OneDnnMlp
    return model


class AutocastTimeSformer(TimeSformer):
    """fp32 weights, matmuls in bf16 under autocast (weights converted on every call)."""

    def forward_features(self, video: Tensor, observe: AttentionObserver | None = None) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().forward_features(video.float(), observe)


class CompiledTimeSformer(TimeSformer):
    """bf16 weights, the plain forward compiled by inductor; attention capture (`observe`) runs eagerly."""

    compiled_features: Callable[[Tensor], Tensor]

    def forward_features(self, video: Tensor, observe: AttentionObserver | None = None) -> Tensor:
        if observe is not None:
            return super().forward_features(video, observe)
        return self.compiled_features(video)


def bf16_copy(model: TimeSformer, path: str) -> TimeSformer:
    """A frozen copy of `model` that runs bf16 the way `path` (one of BF16_PATHS) says; `bf16_path` names it."""
    if path not in BF16_PATHS:
        raise ValueError(f"unknown bf16 path {path!r}; known: {', '.join(BF16_PATHS)}")
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    if path == "autocast":
        frozen.__class__ = AutocastTimeSformer
    else:
        frozen.to(torch.bfloat16)
    if path == "onednn":
        use_onednn_kernels(frozen)
    elif path == "compiled":
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE_DIR / "inductor"))  # survives /tmp clean-ups
        frozen.__class__ = CompiledTimeSformer
        frozen.compiled_features = torch.compile(
            TimeSformer.forward_features.__get__(frozen), options={"freezing": True}
        )
    frozen.bf16_path = path
    return frozen


def inference_copy(model: TimeSformer, dtype: torch.dtype) -> TimeSformer:
    """A frozen copy of `model` for inference in `dtype`; bf16 runs the way `choose_bf16_path` picks for this
    machine and model."""
    if dtype != torch.bfloat16:
        return copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
    if not fast_bf16_available():
        raise PrecisionError("this CPU has no fast bf16 (AMX or AVX512-BF16); use float32")
    return bf16_copy(model, choose_bf16_path(model))


# --- choosing the path: timed once per machine and model shape, remembered on disk ---


def machine_key(config: TimeSformerConfig) -> str:
    """What the fastest path depends on: the CPU, its vector flags, threads, torch, and the model's shape."""
    flags = " ".join(sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512", "avx2", "fma"))))
    shape = (
        f"{config.scheme} dim {config.embed_dim} depth {config.depth} heads {config.num_heads} "
        f"mlp {config.mlp_ratio:g} {config.num_frames}x{config.image_size}/{config.patch_size}"
    )
    return f"{cpu_model()} | {flags} | {torch.get_num_threads()} threads | torch {torch.__version__} | {shape}"


def probe_clip(config: TimeSformerConfig) -> Tensor:
    """One random clip of the model's input size, the same every time."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1, config.in_chans, config.num_frames, config.image_size, config.image_size, generator=generator)


def time_forward(model: nn.Module, video: Tensor, rounds: int = 1) -> float:
    """Best seconds of `rounds` forward passes of an already warmed-up model."""
    best = math.inf
    with torch.inference_mode():
        for _ in range(rounds):
            start = time.perf_counter()
            model(video)
            best = min(best, time.perf_counter() - start)
    return best


def probe_bf16_paths(
    model: TimeSformer, timer: Callable[[nn.Module, Tensor], float] = time_forward, paths: Sequence[str] = BF16_PATHS
) -> dict[str, float]:
    """Best seconds per forward of each path whose logits agree with fp32 (within BF16_TOLERANCE) on a probe clip,
    timed in PROBE_ROUNDS interleaved rounds so that other load hits every path alike; a path that fails or
    disagrees is left out. The agreement check warms each path up (and compiles the compiled one)."""
    video = probe_clip(model.config)
    training = model.training
    with torch.inference_mode():
        reference = model.eval()(video)
    model.train(training)
    candidates = {}
    for path in paths:
        try:
            candidate = bf16_copy(model, path)
            with torch.inference_mode():
                error = float((candidate(video.bfloat16()).float() - reference).abs().max())
        except Exception as failure:  # noqa: BLE001 - e.g. no C++ compiler for inductor: that path is not an option
            log.warning("bf16 path %s does not run here: %s", path, str(failure).splitlines()[0][:200])
            continue
        if error > BF16_TOLERANCE:
            log.warning("bf16 path %s differs from fp32 by %.3f (tolerance %g): left out", path, error, BF16_TOLERANCE)
            continue
        candidates[path] = candidate
    seconds = dict.fromkeys(candidates, math.inf)
    for _ in range(PROBE_ROUNDS):
        for path, candidate in candidates.items():
            seconds[path] = min(seconds[path], timer(candidate, video.bfloat16()))
    return seconds


def _read_choices(file: Path) -> dict:
    try:
        choices = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return choices if isinstance(choices, dict) else {}


def choose_bf16_path(
    model: TimeSformer,
    timer: Callable[[nn.Module, Tensor], float] = time_forward,
    paths: Sequence[str] = BF16_PATHS,
    choices_file: Path | None = None,
) -> str:
    """The fastest bf16 path for `model` on this machine: forced by the FORCE_PATH variable, else remembered in
    `choices_file` (default CHOICES_FILE), else timed now by `probe_bf16_paths` and remembered."""
    forced = os.environ.get(FORCE_PATH)
    if forced:
        if forced not in BF16_PATHS:
            raise PrecisionError(f"{FORCE_PATH}={forced} is not one of {', '.join(BF16_PATHS)}")
        return forced
    file = choices_file or CHOICES_FILE
    key = machine_key(model.config)
    remembered = _read_choices(file).get(key)
    if isinstance(remembered, dict) and remembered.get("path") in paths:
        return remembered["path"]
    log.info("timing the bf16 paths for this machine and model (once; remembered in %s)", file)
    seconds = probe_bf16_paths(model, timer, paths)
    if not seconds:
        raise PrecisionError("no bf16 path agrees with fp32 on this machine; use float32")
    path = min(seconds, key=seconds.get)
    choices = _read_choices(file) | {key: {"path": path, "seconds": {p: round(s, 5) for p, s in seconds.items()}}}
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(choices, indent=1))
    os.replace(partial, file)  # whole or not at all, also when two processes probe at once
    return path
