import pytest
import torch

from bench.memory import measure_peak_bytes
from timesformer import SCHEMES, Grid, TimeSformer, cost, preset
from timesformer.cost import (
    GIB,
    MemoryBudgetError,
    available_memory_bytes,
    check_memory,
    comparisons_per_patch,
    count_macs,
    estimate_peak_bytes,
    measure_flops,
    memory_breakdown,
)

# Inference TFLOPs (= multiply-adds) over 3 views, quoted from Table 5 (shared/paper-tables.md).
PAPER_TFLOPS_3_VIEWS = {"base": 0.59, "hr": 5.11, "large": 7.14}
V100_BYTES = 32 * 10**9


@pytest.mark.parametrize("name", PAPER_TFLOPS_3_VIEWS)
def test_divided_macs_per_view_match_the_paper(name: str) -> None:
    per_view = PAPER_TFLOPS_3_VIEWS[name] * 1e12 / 3
    assert count_macs(preset(name))["total"] == pytest.approx(per_view, rel=0.02)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("grid", [None, Grid(4, 6, 2)], ids=["default", "4x48x16"])
def test_analytic_macs_match_the_flop_counter(scheme: str, grid: Grid | None) -> None:
    config = preset("tiny", scheme=scheme)
    g = config.grid if grid is None else grid
    video = torch.randn(1, 3, g.t, g.h * config.patch_size, g.w * config.patch_size)
    measured = measure_flops(TimeSformer(config).eval(), video)
    assert 2 * count_macs(config, grid)["total"] == pytest.approx(measured, rel=0.01)


def test_attention_macs_follow_the_group_sizes() -> None:
    n, t, d, depth = 196, 8, 768, 12
    joint = count_macs(preset("base", scheme="joint_space_time"))
    assert joint["attention.space_time"] == depth * 2 * (n * t + 1) ** 2 * d
    divided = count_macs(preset("base"))
    assert divided["attention.time"] == depth * 2 * n * t**2 * d
    assert divided["attention.space"] == depth * 2 * t * (n + 1) ** 2 * d
    space = count_macs(preset("base", scheme="space_only"))
    assert space["mlp"] == depth * t * (n + 1) * 2 * d * 4 * d  # every frame carries its own CLS


def test_comparisons_per_patch_per_scheme() -> None:
    t, h, w = 8, 14, 14
    n = h * w
    expected = {
        "space_only": n + 1,
        "joint_space_time": n * t + 1,
        "divided_space_time": n + t + 1,  # the paper's N+F+2 also counts CLS among the temporal keys
        "sparse_local_global": t * n // 4 + t * n // 8 + 1,
        "axial": t + w + h + 1,
    }
    for scheme, count in expected.items():
        assert comparisons_per_patch(preset("base", scheme=scheme)) == count, scheme


@pytest.mark.parametrize(
    ("name", "scheme", "capture", "training"),
    [
        ("tiny", "joint_space_time", False, False),
        ("tiny", "axial", True, False),
        ("small", "joint_space_time", True, False),
        ("small", "divided_space_time", False, True),
        ("small", "joint_space_time", True, True),
    ],
)
def test_activation_estimate_tracks_measured_peak(name: str, scheme: str, capture: bool, training: bool) -> None:
    config = preset(name, scheme=scheme)
    video = torch.randn(2, 3, config.num_frames, config.image_size, config.image_size)
    measured = measure_peak_bytes(TimeSformer(config).eval(), video, capture, training)
    estimate = memory_breakdown(config, batch=2, capture=capture, training=training)["activations"]
    assert measured / 1.5 < estimate < measured * 1.5


def test_training_memory_agrees_with_figure_3() -> None:
    """Joint attention (explicit softmax, as the 2021 code) leaves a 32 GB GPU at 448 px or 32 frames."""

    def training_bytes(scheme: str, **size: int) -> int:
        return estimate_peak_bytes(preset("base", scheme=scheme, **size), capture=True, training=True)

    assert training_bytes("joint_space_time", image_size=336) < V100_BYTES
    assert training_bytes("joint_space_time", num_frames=16) < V100_BYTES
    assert training_bytes("joint_space_time", image_size=448) > 0.9 * V100_BYTES
    assert training_bytes("joint_space_time", num_frames=32) > 0.9 * V100_BYTES
    assert training_bytes("divided_space_time", num_frames=96) < V100_BYTES  # TimeSformer-L trains
    assert training_bytes("divided_space_time", num_frames=16, image_size=448) < V100_BYTES  # -HR trains


def test_check_memory_refuses_joint_capture_on_large_clips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 24 * GIB)
    config = preset("large", scheme="joint_space_time")
    with pytest.raises(MemoryBudgetError) as refused:
        check_memory(config, capture=True)
    message = str(refused.value)
    assert f"{estimate_peak_bytes(config, capture=True) / GIB:.1f} GiB" in message
    assert "24.0 GiB" in message
    assert "attention capture" in message and "divided" in message
    check_memory(preset("base"))


def test_available_memory_is_plausible() -> None:
    assert 0 < available_memory_bytes() < 2**50


def test_bad_input_gives_value_errors() -> None:
    with pytest.raises(ValueError, match="even"):
        count_macs(preset("tiny", scheme="sparse_local_global"), Grid(3, 4, 4))
    with pytest.raises(ValueError, match="batch"):
        estimate_peak_bytes(preset("tiny"), batch=0)
