"""Where the model runs: CPU features decide whether bf16 is worth it. Detected, never assumed."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import torch
from torch import nn

BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@cache
def cpu_flags() -> frozenset[str]:
    """The feature flags the kernel reports for this CPU (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def fast_bf16_available() -> bool:
    """True where bf16 matmuls run in hardware (AMX or AVX512-BF16) through oneDNN; elsewhere bf16 is emulated
    and slower than fp32."""
    return bool(BF16_FLAGS & cpu_flags()) and torch.backends.mkldnn.is_available()


def inference_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A frozen copy of `model` in `dtype` (weights converted once, not per call as autocast does)."""
    if dtype == torch.bfloat16 and not fast_bf16_available():
        raise RuntimeError("this CPU has no fast bf16 (AMX or AVX512-BF16); use float32")
    return copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
