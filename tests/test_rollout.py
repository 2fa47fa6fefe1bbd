import pytest
import torch

from analysis.rollout import (
    RolloutSettings,
    fuse_for_rollout,
    last_layer_attention,
    roll_out,
    rollout,
)
from timesformer import SCHEMES, Grid, TimeSformer, preset
from timesformer.runtime import bf16_copy, fast_bf16_available


def dense_operator(fused: torch.Tensor, stage, grid: Grid, residual: float) -> torch.Tensor:
    """The stage's full (1 + N*T)^2 mixing matrix, built entry by entry (batch of one)."""
    size = 1 + grid.num_patches
    mixing = torch.zeros(size, size, dtype=torch.float64)
    members = stage.group(torch.arange(grid.num_patches)[None, :, None], grid)[..., 0]  # [groups, L]
    offset = int(stage.with_cls)
    for g, tokens in enumerate(members.tolist()):
        for i, p in enumerate(tokens):
            for j, q in enumerate(tokens):
                mixing[1 + p, 1 + q] = fused[g, i + offset, j + offset]
            if stage.with_cls:
                mixing[1 + p, 0] = fused[g, i + 1, 0]
                mixing[0, 1 + p] += fused[g, 0, i + 1] / len(members)
        if stage.with_cls:
            mixing[0, 0] += fused[g, 0, 0] / len(members)
    if not stage.with_cls:
        mixing[0, 0] = 1.0
    mixing = residual * torch.eye(size, dtype=torch.float64) + (1 - residual) * mixing
    return mixing / mixing.sum(-1, keepdim=True)


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "space_only"])
@pytest.mark.parametrize(
    "settings", [RolloutSettings(), RolloutSettings(head_fusion="max", discard_ratio=0.3, residual=0.3, start_layer=1)]
)
def test_structured_rollout_equals_dense_matrix_product(scheme: str, settings: RolloutSettings) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme)).eval()
    video = torch.randn(1, 3, 4, 32, 48)
    grid = model.grid_of(video)
    with torch.no_grad():
        attention = model.inspect(video).attention
    fused = [{name: fuse_for_rollout(p, settings) for name, p in block.items()} for block in attention]
    product = torch.eye(1 + grid.num_patches, dtype=torch.float64)
    for index in settings.layers(len(fused)):
        for stage in model.block_type.stages:
            product = dense_operator(fused[index][stage.name].double()[:], stage, grid, settings.residual) @ product
    maps, cls_share = roll_out(fused, model.block_type.stages, False, grid, 1, settings)
    expected = product[0, 1:].reshape(grid.h, grid.w, grid.t).permute(2, 0, 1)  # b (h w t) layout
    torch.testing.assert_close(maps[0].double(), expected, atol=1e-6, rtol=0)
    assert abs(cls_share.item() - product[0, 0].item()) < 1e-6


def test_space_only_rollout_is_the_mean_of_per_frame_rollouts() -> None:
    model = TimeSformer(preset("tiny", scheme="space_only")).eval()
    video = torch.randn(1, 3, 4, 32, 32)
    whole = rollout(model, video).maps[0]
    for t in range(4):
        alone = rollout(model, video[:, :, t : t + 1]).maps[0, 0]
        torch.testing.assert_close(whole[t], alone / 4, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_rollout_is_a_distribution_over_tokens(scheme: str) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme)).eval()
    video = torch.randn(2, 3, 8, 32, 32)
    for result in (rollout(model, video), last_layer_attention(model, video), rollout(model, video, target_class=2)):
        assert result.maps.shape == (2, 8, 4, 4) and (result.maps >= 0).all()
        torch.testing.assert_close(result.maps.sum((1, 2, 3)) + result.cls_share, torch.ones(2), atol=1e-5, rtol=0)


def test_rollout_finds_the_token_that_attention_points_to() -> None:
    """Make every layer's attention point at one patch: rollout must put its largest mass there."""
    model = TimeSformer(preset("tiny", scheme="joint_space_time")).eval()
    grid = Grid(8, 4, 4)
    target = 1 + (2 * 4 + 1) * 8 + 5  # row 2, column 1, frame 5 in the b (h w t) layout
    probs = torch.full((1, 4, 129, 129), 0.1 / 128)
    probs[..., target] = 0.9
    fused = [{"space_time": fuse_for_rollout(probs, RolloutSettings())} for _ in range(4)]
    maps, _ = roll_out(fused, model.block_type.stages, False, grid, 1, RolloutSettings())
    assert maps[0].argmax().item() == (5 * 4 + 2) * 4 + 1  # t h w order of the map


def test_gradient_weighting_depends_on_the_class() -> None:
    model = TimeSformer(preset("tiny", num_classes=5)).eval()
    video = torch.randn(1, 3, 8, 32, 32)
    assert not torch.allclose(rollout(model, video, target_class=0).maps, rollout(model, video, target_class=4).maps)


@pytest.mark.parametrize("path", ["onednn", "autocast"])
def test_a_bf16_copy_rolls_out_the_same_maps_in_fp32(path: str) -> None:
    """The clip is read in the copy's dtype and the maps rolled out in fp32: close to the fp32 model's, while
    gradient weighting, which the frozen copy cannot give, is refused in one line."""
    if not fast_bf16_available():
        pytest.skip("this CPU has no fast bf16")
    model = TimeSformer(preset("tiny", num_classes=5)).eval()
    video = torch.randn(1, 3, 8, 32, 32)
    copy = bf16_copy(model, path)
    expected, got = rollout(model, video), rollout(copy, video)
    assert got.maps.dtype == torch.float32 and got.logits.dtype == torch.float32
    torch.testing.assert_close(got.maps, expected.maps, atol=0.02, rtol=0.05)
    with pytest.raises(ValueError, match="needs a model with gradients"):
        rollout(copy, video, target_class=0)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="head fusion"):
        RolloutSettings(head_fusion="median")
    with pytest.raises(ValueError, match="discard ratio"):
        RolloutSettings(discard_ratio=1.0)
    with pytest.raises(ValueError, match="layer range"):
        RolloutSettings(start_layer=3, stop_layer=2).layers(4)
