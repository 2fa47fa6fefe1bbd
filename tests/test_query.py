"""Per-query attention: patterns per scheme, weights read from the right rows."""

import numpy as np
import pytest
import torch

from analysis.query import Query, fuse_heads, inspect_query, query_attention, query_pattern
from timesformer import SCHEMES, Grid, TimeSformer, preset
from timesformer.cost import comparisons_per_patch

GRID = Grid(4, 4, 4)
QUERY = Query(t=1, row=2, col=3)


def tiny(scheme: str) -> TimeSformer:
    return TimeSformer(preset("tiny", scheme=scheme, num_frames=4, depth=2)).eval()


def inspected(scheme: str, batch: int = 2):
    model = tiny(scheme)
    clip = torch.randn(batch, 3, 4, 32, 32)
    with torch.inference_mode():
        return model, clip, model.inspect(clip)


def keys(**where) -> np.ndarray:
    """bool [T, H, W]: the patches whose (t, h, w) satisfy every given predicate."""
    t, h, w = np.meshgrid(*(np.arange(n) for n in (GRID.t, GRID.h, GRID.w)), indexing="ij")
    mask = np.ones((GRID.t, GRID.h, GRID.w), bool)
    for axis, predicate in where.items():
        mask &= predicate({"t": t, "h": h, "w": w}[axis])
    return mask


def patterns(scheme: str) -> dict:
    return {p.stage: (p.keys, p.cls) for p in query_pattern(scheme, GRID, QUERY)}


def assert_pattern(actual: tuple, expected_keys: np.ndarray, expected_cls: bool) -> None:
    np.testing.assert_array_equal(actual[0], expected_keys)
    assert actual[1] == expected_cls


def test_divided_pattern_is_temporal_line_then_frame_with_cls():
    found = patterns("divided_space_time")
    assert list(found) == ["time", "space"]
    assert_pattern(found["time"], keys(h=lambda h: h == 2, w=lambda w: w == 3), False)
    assert_pattern(found["space"], keys(t=lambda t: t == 1), True)


def test_joint_pattern_is_everything():
    found = patterns("joint_space_time")
    assert_pattern(found["space_time"], keys(), True)


def test_space_only_pattern_is_own_frame_with_cls():
    assert_pattern(patterns("space_only")["space"], keys(t=lambda t: t == 1), True)


def test_local_global_patterns():
    found = patterns("sparse_local_global")
    # query at row 2, col 3 of a 4x4 grid: the bottom-right 2x2 quadrant, in every frame
    assert_pattern(found["local"], keys(h=lambda h: h >= 2, w=lambda w: w >= 2), False)
    # stride 2 in every axis: same parity of t, row and column as (1, 2, 3)
    same_parity = keys(t=lambda t: t % 2 == 1, h=lambda h: h % 2 == 0, w=lambda w: w % 2 == 1)
    assert_pattern(found["global"], same_parity, True)


def test_axial_patterns():
    found = patterns("axial")
    assert_pattern(found["time"], keys(h=lambda h: h == 2, w=lambda w: w == 3), False)
    assert_pattern(found["width"], keys(t=lambda t: t == 1, h=lambda h: h == 2), False)
    assert_pattern(found["height"], keys(t=lambda t: t == 1, w=lambda w: w == 3), True)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pattern_sizes_match_comparisons_per_patch(scheme):
    config = preset("tiny", scheme=scheme, num_frames=GRID.t)
    total = sum(p.comparisons for p in query_pattern(scheme, GRID, QUERY))
    assert total == comparisons_per_patch(config, GRID)


def test_comparisons_follow_the_paper_for_joint_and_divided():
    n, t = GRID.patches_per_frame, GRID.t
    assert comparisons_per_patch(preset("tiny", scheme="joint_space_time"), GRID) == n * t + 1
    assert comparisons_per_patch(preset("tiny", scheme="divided_space_time"), GRID) == n + t + 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_weights_are_a_distribution_over_pattern_and_cls(scheme):
    _, _, inspection = inspected(scheme)
    result = query_attention(inspection, scheme, GRID, QUERY, index=1)
    assert len(result) == 2
    for block in result:
        for stage in block.values():
            heads = stage.weights.shape[0]
            assert stage.weights.shape == (heads, GRID.t, GRID.h, GRID.w)
            np.testing.assert_allclose(stage.weights.sum(axis=(1, 2, 3)) + stage.cls_weight, 1.0, atol=1e-5)
            assert not stage.weights[:, ~stage.pattern.keys].any()
            assert (stage.weights[:, stage.pattern.keys] > 0).all()
            assert (stage.cls_weight > 0).all() == stage.pattern.cls


def test_divided_weights_index_the_attention_tensor_by_hand():
    _, _, inspection = inspected("divided_space_time")
    b, (t, r, c), (T, H, W) = 1, (QUERY.t, QUERY.row, QUERY.col), (GRID.t, GRID.h, GRID.w)
    stages = query_attention(inspection, "divided_space_time", GRID, QUERY, index=b)[1]
    time = inspection.attention[1]["time"]  # [(b h w), heads, T, T]
    expected = time[b * H * W + r * W + c, :, t, :]
    np.testing.assert_allclose(stages["time"].weights[:, :, r, c], expected.numpy())
    space = inspection.attention[1]["space"]  # [(b t), heads, 1 + N, 1 + N], CLS first
    row = space[b * T + t, :, 1 + r * W + c]
    np.testing.assert_allclose(stages["space"].cls_weight, row[:, 0].numpy())
    np.testing.assert_allclose(stages["space"].weights[:, t].reshape(-1, H * W), row[:, 1:].numpy())


def test_joint_weights_follow_the_token_layout():
    _, _, inspection = inspected("joint_space_time")
    b, (t, r, c), (T, _, W) = 0, (QUERY.t, QUERY.row, QUERY.col), (GRID.t, GRID.h, GRID.w)
    stage = query_attention(inspection, "joint_space_time", GRID, QUERY, index=b)[0]["space_time"]
    row = inspection.attention[0]["space_time"][b, :, 1 + (r * W + c) * T + t]  # patch (h, w, t) at 1 + (hW+w)T + t
    for tk, rk, ck in [(0, 0, 0), (3, 1, 2), (2, 3, 0)]:
        np.testing.assert_allclose(stage.weights[:, tk, rk, ck], row[:, 1 + (rk * W + ck) * T + tk].numpy())


def test_space_only_reads_the_frame_sequence():
    _, _, inspection = inspected("space_only")
    b, (t, r, c), (T, W) = 1, (QUERY.t, QUERY.row, QUERY.col), (GRID.t, GRID.w)
    stage = query_attention(inspection, "space_only", GRID, QUERY, index=b)[0]["space"]
    row = inspection.attention[0]["space"][b * T + t, :, 1 + r * W + c]
    np.testing.assert_allclose(stage.cls_weight, row[:, 0].numpy())
    np.testing.assert_allclose(stage.weights[:, t].reshape(len(row), -1), row[:, 1:].numpy())


def test_inspect_query_equals_query_attention():
    model, clip, inspection = inspected("axial")
    direct = inspect_query(model, clip, QUERY, index=1)
    via = query_attention(inspection, "axial", GRID, QUERY, index=1)
    for a, b in zip(direct, via):
        for name in a:
            np.testing.assert_allclose(a[name].weights, b[name].weights, atol=1e-6)


def test_head_fusion():
    _, _, inspection = inspected("divided_space_time")
    stage = query_attention(inspection, "divided_space_time", GRID, QUERY)[0]["space"]
    per_head = stage.weights
    np.testing.assert_allclose(stage.fused("mean")[0], per_head.mean(0))
    np.testing.assert_allclose(stage.fused("max")[0], per_head.max(0))
    np.testing.assert_allclose(stage.fused("min")[0], per_head.min(0))
    heatmap, cls = stage.fused(2)
    np.testing.assert_array_equal(heatmap, per_head[2])
    assert cls == pytest.approx(float(stage.cls_weight[2]))
    with pytest.raises(ValueError, match="head 9"):
        fuse_heads(per_head, 9)
    with pytest.raises(ValueError, match="head fusion"):
        fuse_heads(per_head, "median")


def test_bad_queries_are_refused():
    _, _, inspection = inspected("divided_space_time")
    with pytest.raises(ValueError, match="outside the clip"):
        query_attention(inspection, "divided_space_time", GRID, Query(4, 0, 0))
    with pytest.raises(ValueError, match="clip index"):
        query_attention(inspection, "divided_space_time", GRID, QUERY, index=2)
    with pytest.raises(ValueError, match="unknown attention scheme"):
        query_pattern("nope", GRID, QUERY)
    with pytest.raises(ValueError, match="even"):
        query_pattern("sparse_local_global", Grid(3, 4, 4), QUERY)
