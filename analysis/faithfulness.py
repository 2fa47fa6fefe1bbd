"""Is rollout right? Compare its maps with the known masks of generated clips.

Two measures, per clip: the share of relevance that falls on the object divided by the share of the clip the
object covers (1 = no better than spreading relevance evenly), and the pointing game (does the single most
relevant patch touch the object?).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from einops import reduce
from torch import Tensor

from timesformer.checkpoints import LoadedModel
from timesformer.datasets import VideoSet
from timesformer.video import normalise

from .rollout import Rollout, last_layer_attention, rollout

Explainer = Callable[[torch.nn.Module, Tensor], Rollout]
EXPLAINERS: dict[str, Explainer] = {"rollout": rollout, "last-layer CLS attention": last_layer_attention}


@dataclass
class MaskAgreement:
    """Mean over clips of mass-in-mask / mask area, the pointing-game hit rate, and the mean mask area."""

    mass_ratio: float
    pointing_hits: float
    area: float
    clips: int


def patch_coverage(masks: np.ndarray, patch_size: int) -> Tensor:
    """Object masks [n, T, H, W] -> the fraction of each patch the object covers [n, T, H/P, W/P]."""
    return reduce(torch.from_numpy(masks).float(), "n t (h p) (w q) -> n t h w", "mean", p=patch_size, q=patch_size)


def agreement(maps: Tensor, coverage: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per clip: (relevance share on the object / object area, pointing hit, object area) for maps [n, T, h, w]."""
    relevance = maps / maps.sum((1, 2, 3), keepdim=True)
    area = coverage.mean((1, 2, 3))
    on_object = (relevance * coverage).sum((1, 2, 3))
    top = relevance.flatten(1).argmax(1)
    hits = coverage.flatten(1).gather(1, top[:, None])[:, 0] > 0
    return on_object / area, hits.float(), area


def evaluate(
    loaded: LoadedModel, clips: VideoSet, explainer: Explainer = rollout, batch_size: int = 25
) -> MaskAgreement:
    """How well `explainer`'s maps of `loaded` point at the objects of generated `clips` (frames at model size)."""
    coverage = patch_coverage(clips.masks, loaded.config.patch_size)
    ratios, hits, areas = [], [], []
    for start in range(0, len(clips), batch_size):
        frames = clips.frames[start : start + batch_size]
        video = normalise(frames, loaded.mean, loaded.std)
        maps = explainer(loaded.model, video).maps
        ratio, hit, area = agreement(maps, coverage[start : start + batch_size])
        ratios.append(ratio), hits.append(hit), areas.append(area)
    return MaskAgreement(
        float(torch.cat(ratios).mean()), float(torch.cat(hits).mean()), float(torch.cat(areas).mean()), len(clips)
    )
