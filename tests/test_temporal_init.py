"""The previous-frame start of temporal attention: what it sets, what it leaves, and where it is refused."""

from __future__ import annotations

import pytest
import torch

from analysis.datasets import generate, to_clip_tensor
from timesformer import TimeSformer, preset
from timesformer.temporal_init import TemporalInitError, start_from_previous_frame
from timesformer.train import TrainConfig, TrainError, build_model


@pytest.mark.parametrize("scheme", ["divided_space_time", "axial"])
def test_head_zero_starts_on_the_previous_frame_and_the_rest_is_untouched(scheme: str) -> None:
    torch.manual_seed(0)
    model = TimeSformer(preset("demo", scheme=scheme, num_classes=10)).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    start_from_previous_frame(model)
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    config = model.config
    blocks, dim, head = range(config.depth), config.embed_dim, config.embed_dim // config.num_heads
    weights = {"time_embed"} | {f"blocks.{i}.temporal_attn.qkv.weight" for i in blocks}
    biases = {f"blocks.{i}.temporal_attn.qkv.bias" for i in blocks}  # zeroed for head 0: already zero here
    assert weights <= changed <= weights | biases
    for i in blocks:  # the values and the other heads' queries and keys keep their weights
        weight = model.state_dict()[f"blocks.{i}.temporal_attn.qkv.weight"]
        for rows in (slice(head, dim), slice(dim + head, 3 * dim)):
            assert torch.equal(weight[rows], before[f"blocks.{i}.temporal_attn.qkv.weight"][rows])
    clip = to_clip_tensor(generate("motion", 4, seed=5, num_frames=8, size=64).frames)
    with torch.inference_mode():
        attention = model.inspect(clip).attention
    for block in attention:
        probs = block["time"][:, 0]  # head 0: [(b h w), t, t]
        on_previous = torch.stack([probs[:, t, t - 1] for t in range(1, 8)])
        assert on_previous.mean() > 0.6, on_previous.mean()
        assert block["time"][:, 1:].amax() < 0.5  # the random heads stay diffuse


def test_the_paper_start_is_blind_to_frame_order_and_the_previous_frame_start_is_not() -> None:
    torch.manual_seed(0)
    model = TimeSformer(preset("tiny", num_classes=4)).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.inference_mode():
        assert (model(clip) - model(clip.flip(2))).abs().max() < 1e-5
        start_from_previous_frame(model)
        assert (model(clip) - model(clip.flip(2))).abs().max() > 1e-3


@pytest.mark.parametrize("overrides", [dict(scheme="joint_space_time"), dict(scheme="space_only"),
                                       dict(pos_embed="space"), dict(num_frames=32)])
def test_models_without_room_for_it_are_refused(overrides: dict) -> None:
    model = TimeSformer(preset("tiny", **overrides))  # tiny: 16 channels per head
    with pytest.raises(TemporalInitError):
        start_from_previous_frame(model)


def test_training_config_refuses_it_with_a_training_error() -> None:
    config = TrainConfig(preset="tiny", scheme="joint_space_time", temporal_init="previous_frame")
    with pytest.raises(TrainError, match="temporal attention"):
        build_model(config)
    assert build_model(TrainConfig(preset="tiny", temporal_init="previous_frame")).time_embed.abs().max() == 8.0
