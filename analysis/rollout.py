"""Attention rollout (Abnar & Zuidema 2020; the paper's Fig. 7) for all five schemes.

Each stage of a block mixes the 1 + N*T tokens linearly with its attention: within its groups, with the CLS
copies averaged back into one CLS as the model does. With the residual, the mixing of one stage is
`M = norm(a * I + (1 - a) * A)` (rows renormalised), and the whole model mixes by `R = M_last ... M_first`.
The row of R for CLS says how much each input patch feeds the clip's feature.

Dense (1 + N*T)^2 matrices are never built: the CLS row is carried backwards as a vector through each stage's
grouped attention, which costs far less than the forward pass and scales to HR (16x448) and 96-frame clips.
Only a head-fused [groups, L, L] map per stage is kept while the forward runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, reduce, repeat
from torch import Tensor

from analysis.query import HeadFusion, fuse_heads
from timesformer.layout import Grid
from timesformer.model import TimeSformer
from timesformer.schemes import Stage


@dataclass(frozen=True)
class RolloutSettings:
    """How attention is reduced before rolling out; `layers` is the [start, stop) range of blocks used."""

    head_fusion: HeadFusion = "mean"
    discard_ratio: float = 0.0
    residual: float = 0.5
    start_layer: int = 0
    stop_layer: int | None = None

    def __post_init__(self) -> None:
        if self.head_fusion not in ("mean", "max", "min"):
            raise ValueError(f"head fusion must be mean, max or min, not {self.head_fusion!r}")
        if not 0.0 <= self.discard_ratio < 1.0:
            raise ValueError(f"discard ratio must be in [0, 1), got {self.discard_ratio}")
        if not 0.0 <= self.residual <= 1.0:
            raise ValueError(f"residual weight must be in [0, 1], got {self.residual}")

    def layers(self, depth: int) -> range:
        stop = depth if self.stop_layer is None else self.stop_layer
        if not 0 <= self.start_layer < stop <= depth:
            raise ValueError(f"layer range [{self.start_layer}, {stop}) is not inside the model's {depth} blocks")
        return range(self.start_layer, stop)


@dataclass
class Rollout:
    """Relevance of every input patch to the clip's CLS feature: `maps` [B, T, rows, cols]."""

    maps: Tensor
    cls_share: Tensor
    logits: Tensor


FusedAttention = list[dict[str, Tensor]]
"""Per block, per stage name: head-fused attention [groups * B, L, L] with rows summing to 1 (or 0)."""


def fuse_for_rollout(probs: Tensor, settings: RolloutSettings, grads: Tensor | None = None) -> Tensor:
    """One stage's attention for rollout, [G, heads, L, L] -> [G, L, L]: heads combined as the settings say
    (`analysis.query.fuse_heads`) or weighted by gradients, the weakest links dropped, rows renormalised."""
    if grads is not None:
        fused = (grads * probs).clamp(min=0).mean(1)  # Chefer et al. 2021: positive gradient-weighted attention
    else:
        fused = fuse_heads(probs, settings.head_fusion, axis=1)
    dropped = int(fused.shape[-1] * settings.discard_ratio)
    if dropped:
        weakest = fused.topk(dropped, dim=-1, largest=False).indices
        fused = fused.scatter(-1, weakest, 0.0)
    total = fused.sum(-1, keepdim=True)
    return torch.where(total > 0, fused / total.clamp(min=1e-30), fused)


def propagate(relevance: Tensor, fused: Tensor, stage: Stage, grid: Grid, residual: float) -> Tensor:
    """relevance [B, 1 + N] as a row vector times this stage's mixing matrix M; returns [B, 1 + N].

    Row p of M is (a * e_p + (1 - a) * A_p) / z_p with z_p = a + (1 - a) * sum(A_p); CLS's row in a stage that
    takes CLS is the mean of its copies' rows, and in a stage that leaves CLS out it is e_CLS.
    """
    batch = relevance.shape[0]
    cls, patches = relevance[:, :1], relevance[:, 1:]
    weights = stage.group(patches[..., None], grid)[..., 0]
    copies = weights.shape[0] // batch
    row_sums = fused.sum(-1)
    if stage.with_cls:
        cls_sum = reduce(row_sums[:, 0], "(b g) -> b 1", "mean", b=batch)
        cls = cls / (residual + (1 - residual) * cls_sum)
        weights = torch.cat([repeat(cls, "b 1 -> (b g) 1", g=copies) / copies, weights], dim=1)
    weights = weights / (residual + (1 - residual) * row_sums)
    mixed = torch.einsum("gp,gpq->gq", weights, fused)
    if stage.with_cls:
        cls = residual * cls + (1 - residual) * reduce(mixed[:, :1], "(b g) 1 -> b 1", "sum", b=batch)
        weights, mixed = weights[:, 1:], mixed[:, 1:]
    patches = residual * weights + (1 - residual) * mixed
    return torch.cat([cls, stage.ungroup(patches[..., None], grid, batch)[..., 0]], dim=1)


def roll_out(
    fused: FusedAttention, stages: tuple[Stage, ...], per_frame: bool, grid: Grid, batch: int, settings: RolloutSettings
) -> tuple[Tensor, Tensor]:
    """CLS row of R over the chosen blocks and stages -> (maps [B, T, rows, cols], CLS share [B]).

    `per_frame` schemes (space-only) run each frame as its own sequence, whose CLS tokens the model averages.
    """
    sequence_grid = Grid(1, grid.h, grid.w) if per_frame else grid
    sequences = batch * grid.t if per_frame else batch
    relevance = torch.zeros(sequences, 1 + sequence_grid.num_patches, dtype=torch.float64)
    relevance[:, 0] = 1.0 / grid.t if per_frame else 1.0  # space-only averages the frames' CLS tokens
    for index in reversed(settings.layers(len(fused))):
        for stage in reversed(stages):
            relevance = propagate(relevance, fused[index][stage.name].double(), stage, sequence_grid, settings.residual)
    return _to_maps(relevance, per_frame, grid, batch)


def _to_maps(relevance: Tensor, per_frame: bool, grid: Grid, batch: int) -> tuple[Tensor, Tensor]:
    if per_frame:
        maps = rearrange(relevance[:, 1:], "(b t) (h w) -> b t h w", b=batch, h=grid.h)
        return maps.float(), reduce(relevance[:, 0], "(b t) -> b", "sum", b=batch).float()
    maps = rearrange(relevance[:, 1:], "b (h w t) -> b t h w", h=grid.h, w=grid.w)
    return maps.float(), relevance[:, 0].float()


def fused_attention(
    model: TimeSformer, video: Tensor, settings: RolloutSettings, target_class: int | None = None
) -> tuple[Tensor, FusedAttention]:
    """One forward pass keeping only head-fused maps (logits, maps). With `target_class`, heads are weighted by
    the gradient of that class's logit (gradient-weighted rollout), which needs the whole graph in memory. A bf16
    copy of a model (`timesformer.runtime.inference_copy`) reads the clip in bf16; its maps are rolled out in fp32."""
    fused: FusedAttention = [{} for _ in model.blocks]
    video = video.to(next(model.parameters()).dtype)
    if target_class is None:

        def keep(index: int, stage: Stage, probs: Tensor) -> None:
            fused[index][stage.name] = fuse_for_rollout(probs.float(), settings)

        with torch.inference_mode():
            logits = model.head(model.forward_features(video, keep)).float()
        return logits, fused
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("gradient-weighted rollout needs a model with gradients: use the float32 model")

    inspection = model.inspect(video)
    named = [(i, name, probs) for i, block in enumerate(inspection.attention) for name, probs in block.items()]
    grads = torch.autograd.grad(inspection.logits[:, target_class].sum(), [probs for _, _, probs in named])
    for (index, name, probs), grad in zip(named, grads):
        fused[index][name] = fuse_for_rollout(probs.detach(), settings, grad)
    return inspection.logits.detach(), fused


def rollout(
    model: TimeSformer, video: Tensor, settings: RolloutSettings = RolloutSettings(), target_class: int | None = None
) -> Rollout:
    """Attention rollout of a normalised clip [B, 3, T, H, W] through the model's blocks."""
    logits, fused = fused_attention(model, video, settings, target_class)
    block_type = model.block_type
    maps, cls_share = roll_out(
        fused, block_type.stages, block_type.per_frame, model.grid_of(video), video.shape[0], settings
    )
    return Rollout(maps, cls_share, logits)


def last_layer_attention(model: TimeSformer, video: Tensor, settings: RolloutSettings = RolloutSettings()) -> Rollout:
    """The naive baseline: what CLS attends to in the last stage that has CLS, with no rollout and no residual."""
    logits, fused = fused_attention(model, video, settings)
    block_type = model.block_type
    last = [stage for stage in block_type.stages if stage.with_cls][-1]
    baseline = RolloutSettings(residual=0.0, start_layer=len(fused) - 1)
    maps, cls_share = roll_out(fused, (last,), block_type.per_frame, model.grid_of(video), video.shape[0], baseline)
    return Rollout(maps, cls_share, logits)
