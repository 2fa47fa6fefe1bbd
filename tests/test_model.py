import copy

import pytest
import torch

from timesformer import SCHEMES, Grid, TimeSformer, preset, scheme_block
from timesformer.model import (
    TimeSformerConfig,
    resize_space_embedding,
    resize_time_embedding,
)
from timesformer.runtime import OneDnnMlp, use_onednn_kernels

# Table 1 of the paper, exact integers for a 174-class head (shared/paper-tables.md).
PAPER_PARAMS = {
    "space_only": 85_932_462,
    "joint_space_time": 85_938_606,
    "divided_space_time": 121_392_558,
    "sparse_local_global": 121_392_558,
    "axial": 156_846_510,
}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_parameter_count_matches_table_1(scheme: str) -> None:
    with torch.device("meta"):
        model = TimeSformer(preset("base", scheme=scheme, num_classes=174))
    assert model.num_parameters() == PAPER_PARAMS[scheme]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_inspect_matches_forward_and_attention_rows_sum_to_one(scheme: str) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme, num_classes=5)).eval()
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        logits = model(video)
        seen = model.inspect(video)
    assert logits.shape == (2, 5)
    torch.testing.assert_close(seen.logits, logits, atol=1e-5, rtol=1e-5)
    assert seen.features.shape == (2, 64)
    assert len(seen.attention) == model.config.depth
    for block in seen.attention:
        assert list(block) == [stage.name for stage in model.block_type.stages]
        for probs in block.values():
            assert probs.dim() == 4 and probs.shape[1] == 4 and probs.shape[-1] == probs.shape[-2]
            torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))


def _group_key(stage: str, t: int, h: int, w: int, grid: Grid) -> tuple:
    """Which tokens may talk in one stage, written independently of the einops patterns."""
    return {
        "time": (h, w),
        "space": (t,),
        "space_time": (),
        "local": (h // (grid.h // 2), w // (grid.w // 2)),
        "global": (t % 2, h % 2, w % 2),
        "width": (t, h),
        "height": (t, w),
    }[stage]


def perturbed_tiny(scheme: str) -> TimeSformer:
    """A tiny model in which every weight has a non-trivial value, time embedding and `*_fc` included."""
    model = TimeSformer(preset("tiny", scheme=scheme, num_classes=5)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("scheme", SCHEMES)
def test_inference_path_matches_the_autograd_path(scheme: str) -> None:
    """Without autograd the blocks add residuals and GELU in place; the numbers must not change."""
    model = perturbed_tiny(scheme)
    video = torch.randn(2, 3, 8, 32, 32)
    kept = video.clone()
    trained = model(video)
    assert trained.requires_grad
    with torch.inference_mode():
        inferred = model(video)
        inspected = model.inspect(video).logits
    torch.testing.assert_close(inferred, trained.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inspected, trained.detach(), atol=1e-5, rtol=1e-5)
    assert torch.equal(video, kept)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
@pytest.mark.parametrize("scheme", SCHEMES)
def test_onednn_kernels_give_the_same_model(scheme: str) -> None:
    """The bf16 path's fused kernels (bias and GELU inside the matmul) compute the same function, checked in
    fp32 where rounding cannot hide a wrong bias or activation; parameters and their names are untouched."""
    model = perturbed_tiny(scheme)
    fused = use_onednn_kernels(copy.deepcopy(model))
    assert any(isinstance(m, OneDnnMlp) for m in fused.modules())
    assert not any(type(m) is torch.nn.Linear for m in fused.modules())
    assert fused.state_dict().keys() == model.state_dict().keys()
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(fused(video), model(video), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fused.inspect(video).logits, model(video), atol=1e-5, rtol=1e-5)


def test_stochastic_depth_drops_a_samples_whole_update() -> None:
    """CLS and patches of one sample are kept or dropped together, as in the official code's single residual."""
    torch.manual_seed(0)
    block = scheme_block("divided_space_time")(dim=8, num_heads=2, drop_path=0.5).train()
    grid = Grid(2, 2, 2)
    x = torch.randn(64, 1 + grid.num_patches, 8)
    out, _ = block.attend(x, grid, block.stages[1], capture=False)  # the spatial stage updates CLS too
    cls_changed = (out - x)[:, 0].abs().amax(-1) > 0
    patches_changed = (out - x)[:, 1:].abs().amax((-2, -1)) > 0
    assert torch.equal(cls_changed, patches_changed)
    assert 0 < int(cls_changed.sum()) < 64


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "space_only"])
def test_each_stage_mixes_exactly_its_group(scheme: str) -> None:
    """The gradient of one output patch reaches exactly the patches of its group (and CLS if the stage has it)."""
    grid = Grid(4, 4, 6)
    block = scheme_block(scheme)(dim=8, num_heads=2)
    tokens = [(t, h, w) for h in range(grid.h) for w in range(grid.w) for t in range(grid.t)]  # b (h w t) order
    for stage in block.stages:
        x = torch.randn(1, 1 + grid.num_patches, 8, requires_grad=True)
        out, _ = block.attend(x, grid, stage, capture=False)
        query = 1 + tokens.index((3, 2, 5))
        out[0, query].sum().backward()
        reached = x.grad[0].abs().sum(-1) > 0
        expected = [_group_key(stage.name, *token, grid) == _group_key(stage.name, 3, 2, 5, grid) for token in tokens]
        assert reached[1:].tolist() == expected, stage.name
        assert bool(reached[0]) == stage.with_cls, stage.name


def test_space_only_frames_do_not_interact() -> None:
    model = TimeSformer(preset("tiny", scheme="space_only")).eval()
    video = torch.randn(1, 3, 8, 32, 32, requires_grad=True)
    features = model.forward_features(video)
    single = model.forward_features(video[:, :, :1].expand(-1, -1, 8, -1, -1))
    assert not torch.allclose(features, single)
    # averaging per-frame CLS: a clip of 8 copies of one frame equals that frame alone
    torch.testing.assert_close(single, model.forward_features(video[:, :, :1]))


def test_temporal_order_matters_except_for_space_only() -> None:
    video = torch.randn(1, 3, 8, 32, 32)
    reversed_video = video.flip(2)
    for scheme in SCHEMES:
        model = TimeSformer(preset("tiny", scheme=scheme)).eval()
        if model.time_embed is not None:  # it starts at zero, as in the official code
            torch.nn.init.normal_(model.time_embed)
        with torch.no_grad():
            same = torch.allclose(model(video), model(reversed_video), atol=1e-5)
        assert same == (scheme == "space_only"), scheme


@pytest.mark.parametrize("scheme", SCHEMES)
def test_other_clip_sizes_resize_position_embeddings(scheme: str) -> None:
    model = TimeSformer(preset("tiny", scheme=scheme)).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 4, 48, 48))
    assert logits.shape == (1, 400) and torch.isfinite(logits).all()


def test_resize_is_identity_at_the_same_size_and_keeps_cls() -> None:
    pos = torch.randn(1, 1 + 16, 8)
    torch.testing.assert_close(resize_space_embedding(pos, 4, 4), pos)
    assert torch.equal(resize_space_embedding(pos, 6, 3)[:, 0], pos[:, 0])
    time = torch.randn(1, 8, 8)
    torch.testing.assert_close(resize_time_embedding(time, 8), time)
    assert resize_time_embedding(time, 16).shape == (1, 16, 8)


def test_position_embedding_ablation_variants() -> None:
    for kind, has_pos, has_time in [("space_time", True, True), ("space", True, False), ("none", False, False)]:
        model = TimeSformer(preset("tiny", pos_embed=kind))
        assert (model.pos_embed is not None, model.time_embed is not None) == (has_pos, has_time)
        assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 400)


def test_paper_short_names_and_bad_settings() -> None:
    assert scheme_block("T+S") is SCHEMES["divided_space_time"]
    assert scheme_block("T+W+H") is SCHEMES["axial"]
    with pytest.raises(ValueError, match="unknown attention scheme"):
        TimeSformerConfig(scheme="diagonal")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        TimeSformerConfig(image_size=100, patch_size=16)
    with pytest.raises(ValueError, match="even number"):
        TimeSformer(preset("tiny", scheme="sparse_local_global", num_frames=3))
    model = TimeSformer(preset("tiny"))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.randn(1, 3, 8, 30, 30))
    with pytest.raises(ValueError, match="expected a clip"):
        model(torch.randn(3, 8, 32, 32))
