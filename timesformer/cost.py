"""What a forward pass costs: multiply-adds and memory, counted analytically and measured.

The paper's "FLOPs" are multiply-adds (MACs) per view: ViT-B divided 8x224 is 0.196 T per view, 0.59 T for
its 3 views (Table 2). `count_macs` follows the same convention; `torch.utils.flop_counter` counts 2 FLOPs
per MAC, so `measure_flops(...) == 2 * count_macs(...)["total"]`. Neither counts elementwise work (LayerNorm,
GELU, softmax, residual sums), which is well under 1% of the matrix products here.

Everything is a plain function of a config (and optionally a patch grid), cheap enough to call over every
resolution (224..560) and clip length (8..96) of the paper's Figure 3. The group sizes of every attention
stage are read off the scheme's own einops patterns, so a new scheme is costed without touching this file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .layout import Grid
from .model import TimeSformer, TimeSformerConfig
from .schemes import scheme_block

GIB = 2**30
MEMORY_BUDGET = 0.8
"""Fraction of the available memory a run may use before `check_memory` refuses it."""


@dataclass(frozen=True)
class StageShape:
    """One attention stage of one block, for one clip: `groups` sequences of `length` tokens each."""

    name: str
    groups: int
    length: int
    """Tokens per group, the CLS copy included when the stage joins CLS: the keys each query compares to."""
    with_cls: bool
    has_fc: bool

    @property
    def tokens(self) -> int:
        return self.groups * self.length


@dataclass(frozen=True)
class BlockShape:
    """The token counts one block of a scheme sees for one clip."""

    sequences: int
    """Sequences the model runs per clip: T for per-frame schemes (space-only), else 1."""
    tokens: int
    """Residual-stream tokens per clip, CLS (and its per-frame copies) included."""
    patches: int
    stages: tuple[StageShape, ...]


def block_shape(config: TimeSformerConfig, grid: Grid | None = None) -> BlockShape:
    """Group counts and lengths of every stage, found by grouping an empty meta tensor with the stage's pattern."""
    grid = config.grid if grid is None else grid
    if min(grid.t, grid.h, grid.w) < 1:
        raise ValueError(f"patch grid must be positive in every axis, got {grid}")
    block = scheme_block(config.scheme)
    block.check_grid(grid)
    sequences, seq_grid = (grid.t, Grid(1, grid.h, grid.w)) if block.per_frame else (1, grid)
    patches = torch.empty(sequences, seq_grid.num_patches, 1, device="meta")
    stages = []
    for stage in block.stages:
        groups, length, _ = stage.group(patches, seq_grid).shape
        stages.append(StageShape(stage.name, groups, length + stage.with_cls, stage.with_cls, bool(stage.prefix)))
    return BlockShape(sequences, sequences * (1 + seq_grid.num_patches), grid.num_patches, tuple(stages))


def count_macs(config: TimeSformerConfig, grid: Grid | None = None) -> dict[str, int]:
    """Multiply-adds of one clip (one view), by layer kind and attention stage, and their `total`.

    Linear layers cost tokens x in x out. Each stage runs qkv and proj on its grouped tokens (so the CLS copies
    of a stage that joins CLS are paid for), its extra `fc` on the patches and on the averaged CLS update.
    Attention costs groups x length^2 x dim twice: Q K^T and then probabilities times V.
    """
    grid = config.grid if grid is None else grid
    shape = block_shape(config, grid)
    dim, depth = config.embed_dim, config.depth
    hidden = int(dim * config.mlp_ratio)
    macs = {
        "patch_embed": grid.num_patches * config.in_chans * config.patch_size**2 * dim,
        "qkv": depth * sum(stage.tokens for stage in shape.stages) * dim * 3 * dim,
        "proj": depth * sum(stage.tokens for stage in shape.stages) * dim * dim,
        "fc": depth
        * sum(shape.patches + shape.sequences * stage.with_cls for stage in shape.stages if stage.has_fc)
        * dim
        * dim,
        "mlp": depth * shape.tokens * 2 * dim * hidden,
        "head": dim * config.num_classes,
    }
    for stage in shape.stages:
        macs[f"attention.{stage.name}"] = depth * 2 * stage.groups * stage.length**2 * dim
    macs["total"] = sum(macs.values())
    return macs


def comparisons_per_patch(config: TimeSformerConfig, grid: Grid | None = None) -> int:
    """Keys one patch query is compared with in one block, summed over the block's stages.

    Counted as the model computes: the length of the query's group in every stage, itself and the CLS copy
    included where the stage joins CLS. Joint: N*T + 1, as the paper says. Divided: T + (N + 1) = N + T + 1,
    one less than the paper's N + F + 2, whose Eqs. 6-7 also put CLS among the temporal keys; the official
    code (and ours) leaves CLS out of temporal attention.
    """
    return sum(stage.length for stage in block_shape(config, grid).stages)


def measure_flops(model: nn.Module, video: Tensor) -> int:
    """FLOPs (2 per multiply-add) of one forward pass, counted by `torch.utils.flop_counter`.

    The counter sees fused SDPA on CPU as zero work, so attention runs on the math backend here, which
    decomposes into the matrix products the counter knows.
    """
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(video)
    return counter.get_total_flops()


@lru_cache(maxsize=256)
def parameter_count(config: TimeSformerConfig) -> int:
    """Parameters of the model: exact and nearly free at any depth, so a checkpoint can be sized before it is
    built. The model is built on the meta device with one block and with two; every further block adds the same."""
    one, two = (_meta_parameters(replace(config, depth=depth)) for depth in (1, 2))
    return one + (config.depth - 1) * (two - one)


def _meta_parameters(config: TimeSformerConfig) -> int:
    with torch.device("meta"):
        return TimeSformer(config).num_parameters()


def memory_breakdown(
    config: TimeSformerConfig,
    grid: Grid | None = None,
    batch: int = 1,
    capture: bool = False,
    dtype_bytes: int = 4,
    training: bool = False,
) -> dict[str, int]:
    """Estimated peak bytes of one pass: `weights`, `optimizer`, `input`, `activations` and their `total`.

    `activations` is everything a pass allocates beyond the weights and the clip (what `bench.memory.measure_peak_bytes`
    measures); in training that includes the parameter gradients. The official 2021 code computed attention
    explicitly, so `training=True, capture=True` models how the paper trained (its Figure 3).

    The model, in token widths (batch x tokens x dim values), checked against `bench.memory.measure_peak_bytes` on CPU:
    - Inference holds one block's working set: the block input, the residual stream, its normed copy and the
      MLP hidden before and after GELU, (3 + 2 x mlp_ratio) widths, the widest point of a block.
    - Fused SDPA is assumed flash-style (memory linear in the group length, as on CPU and on GPU flash or
      memory-efficient kernels). `capture=True` takes the explicit softmax path, which materialises
      groups x heads x length^2 probabilities per stage and keeps every block's, plus the scores of the
      stage being computed.
    - Training keeps, per block, what backward needs: per stage the norm input, the qkv input, q, k, v and
      the attention output (6 widths) and the `fc` input; for the MLP its norm input, fc1 input, GELU input
      and fc2 input (2 + 2 x mlp_ratio widths); on the explicit path the probabilities too. Backward frees
      those while it fills the parameter gradients, so the peak is the larger of the two, plus a working set
      (the scores' and probabilities' gradients of one stage on the explicit path). `optimizer` is SGD's
      momentum buffer, as the paper trains; gradients are freed between steps (`zero_grad` sets them to None).
    """
    if batch < 1 or dtype_bytes < 1:
        raise ValueError(f"batch and dtype_bytes must be positive, got {batch} and {dtype_bytes}")
    grid = config.grid if grid is None else grid
    shape = block_shape(config, grid)
    width = batch * config.embed_dim * dtype_bytes
    widest = max(shape.tokens, *(stage.tokens for stage in shape.stages))
    probs = [batch * stage.groups * config.num_heads * stage.length**2 * dtype_bytes for stage in shape.stages]
    working = (3 + 2 * config.mlp_ratio) * widest * width
    weights = parameter_count(config) * dtype_bytes
    if training:
        per_block = sum(shape.tokens + 5 * stage.tokens + stage.has_fc * shape.patches for stage in shape.stages)
        saved = config.depth * (per_block + (2 + 2 * config.mlp_ratio) * shape.tokens) * width
        if capture:
            saved += config.depth * sum(probs)
        activations = max(saved, weights) + working + (2 * max(probs) if capture else 0)
    else:
        activations = working + (config.depth * sum(probs) + max(probs) if capture else 0)
    memory = {
        "weights": weights,
        "optimizer": weights if training else 0,
        "input": batch * config.in_chans * grid.num_patches * config.patch_size**2 * dtype_bytes,
        "activations": int(activations),
    }
    memory["total"] = sum(memory.values())
    return memory


def estimate_peak_bytes(
    config: TimeSformerConfig,
    grid: Grid | None = None,
    batch: int = 1,
    capture: bool = False,
    dtype_bytes: int = 4,
    training: bool = False,
) -> int:
    """Estimated peak bytes of one pass, weights included (see `memory_breakdown`)."""
    return memory_breakdown(config, grid, batch, capture, dtype_bytes, training)["total"]


def available_memory_bytes() -> int:
    """Memory this process can still take: MemAvailable, capped by a cgroup v2 limit when there is one."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    else:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit, current = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    if limit.exists() and current.exists() and limit.read_text().strip() != "max":
        available = min(available, int(limit.read_text()) - int(current.read_text()))
    return available


def check_memory(
    config: TimeSformerConfig,
    grid: Grid | None = None,
    batch: int = 1,
    capture: bool = False,
    training: bool = False,
) -> None:
    """Raise MemoryBudgetError when the estimated peak exceeds MEMORY_BUDGET of the available memory."""
    grid = config.grid if grid is None else grid
    needed = estimate_peak_bytes(config, grid, batch, capture, training=training)
    available = available_memory_bytes()
    if needed <= MEMORY_BUDGET * available:
        return
    remedies = ["fewer frames", "a smaller frame size"]
    if batch > 1:
        remedies.append("a smaller batch")
    divided = replace(config, scheme="divided_space_time")
    if estimate_peak_bytes(divided, grid, batch, capture, training=training) < needed:
        remedies.append("divided space-time attention")
    if capture:
        remedies.append("no attention capture (the explicit path stores every attention matrix)")
    run = "training" if training else "inference"
    raise MemoryBudgetError(
        f"{config.scheme} {run} on {grid.t} frames of {grid.h * config.patch_size}x{grid.w * config.patch_size} "
        f"px, batch {batch}{' with attention capture' if capture else ''}, needs an estimated "
        f"{needed / GIB:.1f} GiB, but only {available / GIB:.1f} GiB is available "
        f"(budget {MEMORY_BUDGET:.0%}: {MEMORY_BUDGET * available / GIB:.1f} GiB). Try " + ", ".join(remedies) + "."
    )


class MemoryBudgetError(RuntimeError):
    """A run would need more memory than this machine can spare."""
