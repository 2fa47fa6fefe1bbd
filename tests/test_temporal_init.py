"""The previous-frame start: what it sets in each scheme, what it leaves, and where it is refused."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from timesformer import TimeSformer, preset
from timesformer.datasets import generate
from timesformer.temporal_init import (
    TemporalInitError,
    previous_frame_stage,
    start_from_previous_frame,
)
from timesformer.train import build_model
from timesformer.train_config import TrainConfig, TrainError
from timesformer.video import normalise

STARTED = {
    "divided_space_time": ("time", "temporal_"),
    "axial": ("time", "temporal_"),
    "joint_space_time": ("space_time", ""),
    "sparse_local_global": ("local", "local_"),
}
"""Which stage each scheme starts, and its modules' prefix: the first whose groups hold consecutive frames."""


def _target_share(probs: torch.Tensor, stage, grid) -> torch.Tensor:
    """Per query (that has a previous frame): head 0's attention on the same patch one frame earlier.

    Each token's (t, h, w) is put through the stage's own grouping, so the test does not restate the patterns."""
    t, h, w = torch.meshgrid(torch.arange(grid.t), torch.arange(grid.h), torch.arange(grid.w), indexing="ij")
    coords = stage.group(rearrange(torch.stack([t, h, w], -1).float(), "t h w c -> 1 (h w t) c"), grid)
    if stage.with_cls:  # CLS first, at a place no patch has
        coords = torch.cat([torch.full((coords.shape[0], 1, 3), -9.0), coords], dim=1)
    coords = coords.repeat(probs.shape[0] // coords.shape[0], 1, 1)
    query, key = coords[:, :, None], coords[:, None, :]
    target = (key[..., 0] == query[..., 0] - 1) & (key[..., 1:] == query[..., 1:]).all(-1)
    has_previous = target.any(-1)
    return (probs[:, 0] * target).sum(-1)[has_previous]


@pytest.mark.parametrize("scheme", list(STARTED))
def test_head_zero_starts_on_the_same_patch_in_the_previous_frame(scheme: str) -> None:
    torch.manual_seed(0)
    model = TimeSformer(preset("demo", scheme=scheme, patch_size=8, num_classes=10)).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    start_from_previous_frame(model)
    stage = previous_frame_stage(model)
    assert (stage.name, stage.prefix) == STARTED[scheme]
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    config = model.config
    blocks, dim, head = range(config.depth), config.embed_dim, config.embed_dim // config.num_heads
    qkv = [f"blocks.{i}.{stage.prefix}attn.qkv" for i in blocks]
    expected = (
        {"time_embed"}
        | {f"{name}.weight" for name in qkv}
        | ({"pos_embed"} if scheme in ("joint_space_time", "sparse_local_global") else set())
    )
    if scheme == "sparse_local_global":  # head 0 of the added local stage is let through from the start
        expected |= {f"blocks.{i}.local_{name}.weight" for i in blocks for name in ("fc", "attn.proj")}
        for i in blocks:
            block = model.blocks[i]
            assert torch.equal(block.local_fc.weight, torch.eye(dim)) and not block.local_fc.bias.any()
            assert not block.local_attn.proj.weight[:, head:].any()
            assert torch.equal(
                block.local_attn.proj.weight[:, :head], before[f"blocks.{i}.local_attn.proj.weight"][:, :head]
            )
    assert expected <= changed <= expected | {f"{name}.bias" for name in qkv}  # biases zeroed: zero here already
    for name in qkv:  # the values and the other heads' queries and keys keep their weights
        weight = model.state_dict()[f"{name}.weight"]
        for rows in (slice(head, dim), slice(dim + head, 3 * dim)):
            assert torch.equal(weight[rows], before[f"{name}.weight"][rows])
    clip = normalise(generate("motion", 4, seed=5, num_frames=8, size=64).frames)
    with torch.inference_mode():
        attention = model.inspect(clip).attention
    for block in attention:
        share = _target_share(block[stage.name], stage, config.grid)
        assert share.mean() > 0.6, share.mean()
        assert block[stage.name][:, 1:].amax(-1).mean() < 0.5  # the other heads stay diffuse


@pytest.mark.parametrize("scheme", list(STARTED))
def test_the_paper_start_is_blind_to_frame_order_and_the_previous_frame_start_is_not(scheme: str) -> None:
    torch.manual_seed(0)
    model = TimeSformer(preset("tiny", scheme=scheme, num_classes=4)).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.inference_mode():
        assert (model(clip) - model(clip.flip(2))).abs().max() < 1e-5
        start_from_previous_frame(model)
        assert (model(clip) - model(clip.flip(2))).abs().max() > 1e-3


@pytest.mark.parametrize(
    "overrides",
    [
        dict(scheme="space_only"),
        dict(pos_embed="space"),
        dict(num_frames=32),
        dict(scheme="joint_space_time", num_frames=10),
    ],
)
def test_models_without_room_for_it_are_refused(overrides: dict) -> None:
    model = TimeSformer(preset("tiny", **overrides))  # tiny: 16 channels per head, 4 x 4 patches
    with pytest.raises(TemporalInitError):
        start_from_previous_frame(model)


def test_training_config_refuses_it_with_a_training_error() -> None:
    config = TrainConfig(preset="tiny", scheme="space_only", temporal_init="previous_frame")
    with pytest.raises(TrainError, match="attention across frames"):
        build_model(config)
    assert build_model(TrainConfig(preset="tiny", temporal_init="previous_frame")).time_embed.abs().max() == 8.0
