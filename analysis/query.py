"""Per-query attention, the paper's Figure 1 made live: which tokens one patch can attend to, and how much it does.

For a query patch (frame t, row, column), every attention stage of every block has a *pattern* (the keys the
query is compared with: a boolean map over the clip's patches, plus whether a CLS copy is among them) and the
*weights* the trained model actually gives those keys, per head. Both are read off the scheme's own einops
grouping: an index tensor holding every patch's clip position is grouped exactly as the block groups the
tokens, so the group that holds the query is its pattern and the query's place in that group is its row of the
captured attention. No scheme is special-cased, L+G and axial included, and a new scheme needs nothing here.

Space-only runs each frame as its own sequence of 1 + N tokens (sequence index b*T + t), so its index tensor is
laid out per frame in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeVar

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from timesformer.layout import Grid
from timesformer.model import Inspection, TimeSformer
from timesformer.schemes import Stage, scheme_block

HeadFusion = Literal["mean", "max", "min"] | int
"""How the heads are combined: their mean, max or min, or one head by its index."""
ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)


@dataclass(frozen=True)
class Query:
    """A query patch: frame, patch row, patch column."""

    t: int
    row: int
    col: int

    def check(self, grid: Grid) -> None:
        """Raise ValueError when the patch is outside the clip's patch grid."""
        if not (0 <= self.t < grid.t and 0 <= self.row < grid.h and 0 <= self.col < grid.w):
            raise ValueError(
                f"query patch (t={self.t}, row={self.row}, col={self.col}) is outside the clip's grid of "
                f"{grid.t} frames x {grid.h} rows x {grid.w} columns"
            )


@dataclass(frozen=True)
class Pattern:
    """The keys a query is compared with in one attention stage."""

    stage: str
    keys: np.ndarray
    """bool [T, H, W]: True for every patch among the keys (the query itself included)."""
    cls: bool
    """Whether a copy of CLS is among the keys."""

    @property
    def comparisons(self) -> int:
        return int(self.keys.sum()) + self.cls


@dataclass(frozen=True)
class StageWeights:
    """The attention one query gives in one stage of one block, per head."""

    block: int
    pattern: Pattern
    weights: np.ndarray
    """float32 [heads, T, H, W]: the probability on each patch key, zero outside the pattern."""
    cls_weight: np.ndarray
    """float32 [heads]: the probability on the CLS copy (zero when CLS is not a key)."""

    def fused(self, heads: HeadFusion = "mean") -> tuple[np.ndarray, float]:
        """The [T, H, W] map and the CLS weight with the heads fused (mean/max/min) or one head picked."""
        return fuse_heads(self.weights, heads), float(fuse_heads(self.cls_weight, heads))


def fuse_heads(per_head: ArrayT, heads: HeadFusion = "mean", axis: int = 0) -> ArrayT:
    """Combine the heads along `axis` by mean, max or min, or select one head by index; numpy or torch in,
    the same out. The one head fusion of the package: per-query views and rollout both use it."""
    tensor = torch.as_tensor(per_head)
    if isinstance(heads, (int, np.integer)) and not isinstance(heads, bool):
        if not 0 <= heads < tensor.shape[axis]:
            raise ValueError(f"head {heads} does not exist: the model has heads 0..{tensor.shape[axis] - 1}")
        fused = tensor.select(axis, int(heads))
    elif heads in ("mean", "max", "min"):
        fused = {"mean": tensor.mean, "max": tensor.amax, "min": tensor.amin}[heads](axis)
    else:
        raise ValueError(f"head fusion must be 'mean', 'max', 'min' or a head index, not {heads!r}")
    return fused.numpy() if isinstance(per_head, np.ndarray) else fused


class _Location(NamedTuple):
    """Where a query sits in one stage's grouped tokens."""

    row: int
    """Its group: the row of the stage's probabilities [groups * B, heads, L, L]."""
    position: int
    """Its place in the group, CLS copy not counted."""
    keys: Tensor
    """The flat clip positions t*H*W + h*W + w of the group's patches, in group order."""


def _locate(scheme: str, grid: Grid, query: Query, batch: int = 1, index: int = 0) -> dict[str, _Location]:
    """The query's location in every stage of the scheme, for clip `index` of a batch of `batch` clips.

    Every patch is represented by its flat position `index*T*H*W + t*H*W + h*W + w`, laid out as the block sees
    the tokens (per frame for per-frame schemes: sequence b*T + t), then grouped by the stage's own pattern.
    """
    block = scheme_block(scheme)
    block.check_grid(grid)
    query.check(grid)
    if not 0 <= index < batch:
        raise ValueError(f"clip index {index} is outside the batch of {batch} clips")
    positions = torch.arange(batch * grid.num_patches).reshape(batch, grid.t, grid.h, grid.w)
    if block.per_frame:
        tokens, token_grid = rearrange(positions, "b t h w -> (b t) (h w) 1"), Grid(1, grid.h, grid.w)
    else:
        tokens, token_grid = rearrange(positions, "b t h w -> b (h w t) 1"), grid
    offset = index * grid.num_patches
    target = offset + (query.t * grid.h + query.row) * grid.w + query.col
    located = {}
    for stage in block.stages:
        groups = stage.group(tokens, token_grid)
        row, position, _ = torch.nonzero(groups == target)[0].tolist()
        located[stage.name] = _Location(row, position, groups[row, :, 0] - offset)
    return located


def _pattern(stage: Stage, keys: Tensor, grid: Grid) -> Pattern:
    mask = np.zeros(grid.num_patches, bool)
    mask[keys.numpy()] = True
    return Pattern(stage.name, mask.reshape(grid.t, grid.h, grid.w), stage.with_cls)


def query_pattern(scheme: str, grid: Grid, query: Query) -> list[Pattern]:
    """The keys of a query patch in each stage of one block, in forward order (no model needed)."""
    located = _locate(scheme, grid, query)
    return [_pattern(stage, located[stage.name].keys, grid) for stage in scheme_block(scheme).stages]


def _stage_weights(number: int, stage: Stage, probs: Tensor, location: _Location, grid: Grid) -> StageWeights:
    """The query's row of one stage's probabilities [groups * B, heads, L, L], scattered onto the clip's patches."""
    chosen = probs[location.row, :, location.position + stage.with_cls].float().cpu()  # [heads, keys]
    weights = torch.zeros(chosen.shape[0], grid.num_patches)
    weights[:, location.keys] = chosen[:, stage.with_cls :]
    cls_weight = chosen[:, 0] if stage.with_cls else torch.zeros(chosen.shape[0])
    return StageWeights(
        number,
        _pattern(stage, location.keys, grid),
        weights.reshape(-1, grid.t, grid.h, grid.w).numpy(),
        cls_weight.numpy(),
    )


def query_attention(
    inspection: Inspection, scheme: str, grid: Grid, query: Query, index: int = 0
) -> list[dict[str, StageWeights]]:
    """Per block, per stage name: the pattern of the query patch and the attention it gives, per head.

    `inspection` comes from `TimeSformer.inspect` on a batch of clips; `index` picks the clip (or crop) in it.
    """
    if not inspection.attention:
        raise ValueError("the inspection holds no attention: run TimeSformer.inspect, not forward")
    located = _locate(scheme, grid, query, inspection.logits.shape[0], index)
    stages = {stage.name: stage for stage in scheme_block(scheme).stages}
    return [
        {name: _stage_weights(number, stages[name], probs, located[name], grid) for name, probs in block.items()}
        for number, block in enumerate(inspection.attention)
    ]


def inspect_query(model: TimeSformer, clip: Tensor, query: Query, index: int = 0) -> list[dict[str, StageWeights]]:
    """`query_attention` for a model and a normalised clip [B, 3, T, H, W], in one forward pass.

    Only the query's rows are kept as the attention is computed, so memory stays that of one stage's attention
    however many blocks the model has.
    """
    grid = model.grid_of(clip)
    located = _locate(model.config.scheme, grid, query, clip.shape[0], index)
    result: list[dict[str, StageWeights]] = [{} for _ in model.blocks]

    def keep(number: int, stage: Stage, probs: Tensor) -> None:
        result[number][stage.name] = _stage_weights(number, stage, probs, located[stage.name], grid)

    with torch.inference_mode():
        model.forward_features(clip.to(next(model.parameters()).dtype), keep)
    return result
