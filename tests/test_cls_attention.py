"""CLS attention per layer and head, checked against the attention probabilities read by hand."""

import pytest
import torch
from einops import rearrange

from analysis.cls_attention import cls_attention
from timesformer import SCHEMES, TimeSformer, preset


def inspected(scheme: str):
    model = TimeSformer(preset("tiny", scheme=scheme, num_frames=4, num_classes=3)).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        return model, model.inspect(clip)


def test_joint_maps_are_the_cls_rows_in_token_layout():
    model, inspection = inspected("joint_space_time")
    grid = model.config.grid
    maps = cls_attention(inspection, "joint_space_time", grid, index=1)
    for layer, stages in enumerate(inspection.attention):
        probs = stages["space_time"][1]  # clip 1: [heads, 1 + N*T, 1 + N*T]
        expected = rearrange(probs[:, 0, 1:], "k (h w t) -> k t h w", h=grid.h, w=grid.w)
        torch.testing.assert_close(torch.from_numpy(maps[layer]), expected)


@pytest.mark.parametrize("scheme", ["space_only", "divided_space_time"])
def test_per_frame_cls_copies_are_averaged(scheme):
    model, inspection = inspected(scheme)
    grid = model.config.grid
    maps = cls_attention(inspection, scheme, grid, index=0)
    for layer, stages in enumerate(inspection.attention):
        probs = stages["space"][: grid.t]  # clip 0's frames: [T, heads, 1 + N, 1 + N]
        expected = rearrange(probs[:, :, 0, 1:], "t k (h w) -> k t h w", h=grid.h) / grid.t
        torch.testing.assert_close(torch.from_numpy(maps[layer]), expected)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_gives_one_map_per_layer_and_head(scheme):
    model, inspection = inspected(scheme)
    config = model.config
    maps = cls_attention(inspection, scheme, config.grid)
    assert maps.shape == (config.depth, config.num_heads, *(config.grid.t, config.grid.h, config.grid.w))
    assert (maps >= 0).all() and (maps.sum(axis=(2, 3, 4)) <= 1 + 1e-5).all()


def test_bad_index_is_refused():
    model, inspection = inspected("axial")
    with pytest.raises(ValueError, match="outside the inspected batch"):
        cls_attention(inspection, "axial", model.config.grid, index=2)
