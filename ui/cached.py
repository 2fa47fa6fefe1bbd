"""The app's expensive results, cached by what determines them: model key, clip key and settings.

The model and clip objects are passed with a leading underscore (not hashed); their keys stand for them.
Only the centre crop is analysed; predictions are given for the centre crop and for the paper's 3 crops.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from analysis.cls_attention import cls_attention
from analysis.figures.frames import StageMap, heat_images, mark_patch, query_images, upscale
from analysis.query import Query, StageWeights, query_attention
from analysis.rollout import RolloutSettings, last_layer_attention, rollout
from timesformer.cost import check_memory
from timesformer.inference import inspect, predict
from timesformer.model import Inspection
from timesformer.video import Clip
from ui.session import Model

METHODS = {"rollout": "Rollout", "last_layer": "Last layer (raw)", "gradient": "Gradient-weighted"}
"""What `relevance` computes: attention rollout, the last layer's raw CLS attention (the naive baseline), or
rollout with heads weighted by the gradient of one class (Chefer et al. 2021)."""


def centre(clip: Clip) -> torch.Tensor:
    """The centre crop [1, 3, T, S, S] of a 3-crop clip."""
    return clip.tensor[len(clip.tensor) // 2 :][:1]


@st.cache_data(max_entries=256, show_spinner=False)
def predictions(model_key: str, clip_key: str, _model: Model, _clip: Clip) -> dict[str, list[tuple[str, float]]]:
    """Top-5 of the centre crop alone and of the softmax averaged over 3 crops (the paper's test)."""
    return {
        "centre crop": predict(_model.loaded, centre(_clip)).top(5),
        "3 crops averaged": predict(_model.loaded, _clip.tensor).top(5),
    }


@st.cache_resource(max_entries=6, show_spinner=False)  # a ViT-B inspection holds over 1 GB of attention
def inspection(model_key: str, clip_key: str, _model: Model, _clip: Clip) -> Inspection:
    """Logits, feature and every block's attention for the centre crop (one forward with capture)."""
    return inspect(_model.loaded, centre(_clip))


@st.cache_data(max_entries=256, show_spinner=False)
def relevance(
    model_key: str,
    clip_key: str,
    method: str,
    settings: RolloutSettings,
    target: int | None,
    _model: Model,
    _clip: Clip,
) -> tuple[np.ndarray, float]:
    """(maps [T, rows, cols], CLS share) of the centre crop by `method` (see METHODS)."""
    model, video = _model.loaded.model, centre(_clip)
    check_memory(model.config, model.grid_of(video), capture=True, training=method == "gradient")
    if method == "rollout":
        result = rollout(model, video, settings)
    elif method == "last_layer":
        result = last_layer_attention(model, video, settings)
    elif method == "gradient":
        result = rollout(model, video, settings, target_class=target)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return result.maps[0].detach().numpy(), float(result.cls_share[0])


@st.cache_data(max_entries=64, show_spinner=False)
def head_maps(model_key: str, clip_key: str, _model: Model, _clip: Clip) -> np.ndarray:
    """[layers, heads, T, rows, cols]: CLS attention of every block and head (see analysis.cls_attention)."""
    model = _model.loaded.model
    return cls_attention(
        inspection(model_key, clip_key, _model, _clip), model.config.scheme, model.grid_of(centre(_clip))
    )


def query_weights(model: Model, clip_key: str, clip: Clip, query: Query) -> list[dict[str, StageWeights]]:
    """Per block and stage: the query patch's keys and the attention it gives them (from the cached inspection)."""
    found = inspection(model.key, clip_key, model, clip)
    grid = model.loaded.model.grid_of(centre(clip))
    return query_attention(found, model.scheme, grid, query)


class StageSummary(NamedTuple):
    """One stage of the query's block in words: keys compared, attention sent to other frames and to CLS."""

    name: str
    keys: int
    elsewhere: float
    cls: bool
    cls_weight: float


@st.cache_data(max_entries=512, show_spinner=False)
def column_view(
    model_key: str,
    clip_key: str,
    view: str,
    query: tuple[int, int, int],
    block: int,
    fusion: str | int,
    size: int,
    _model: Model,
    _clip: Clip,
) -> tuple[np.ndarray, np.ndarray, list[StageSummary]]:
    """Compare schemes, one column: its frames (about `size` px) with the query's attention (or the rollout, the
    query outlined) drawn over them, the values shown on hover, and each stage of the query's block in words."""
    weights = query_weights(_model, clip_key, _clip, Query(*query))[block]
    stages = [StageMap(name, w.pattern.keys, w.fused(fusion)[0]) for name, w in weights.items()]
    summaries = []
    for name, stage in weights.items():
        patch_map, cls_weight = stage.fused(fusion)
        elsewhere = float(patch_map.sum() - patch_map[query[0]].sum())
        summaries.append(StageSummary(name, stage.pattern.comparisons, elsewhere, stage.pattern.cls, cls_weight))
    grid = _model.loaded.model.grid_of(centre(_clip))
    frames = upscale(_clip.frames, size - size % grid.w)  # whole pixels per patch: tints are drawn per patch
    if view == "Rollout":
        maps, _ = relevance(model_key, clip_key, "rollout", RolloutSettings(), None, _model, _clip)
        t, row, col = query
        return mark_patch(heat_images(frames, maps), *maps.shape[1:], row, col, [t]), maps, summaries
    return query_images(frames, stages, query), sum(stage.weights for stage in stages), summaries
