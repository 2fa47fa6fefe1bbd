import numpy as np
import pytest
import torch

from analysis.datasets import generate
from analysis.faithfulness import agreement, evaluate, last_layer_attention, patch_coverage
from timesformer.checkpoints import load_checkpoint
from timesformer.demo import demo_checkpoint

HELD_OUT_SEED = 2024  # never used for training (the demo models train on seeds below 100)


def test_coverage_and_agreement_by_hand() -> None:
    masks = np.zeros((1, 2, 16, 16), bool)
    masks[0, :, :8, :4] = True  # half of the top-left patch in both frames
    coverage = patch_coverage(masks, 8)
    assert coverage[0, :, 0, 0].tolist() == [0.5, 0.5] and coverage.sum() == 1.0
    on_object = torch.zeros(1, 2, 2, 2)
    on_object[0, 1, 0, 0] = 1.0
    ratio, hit, area = agreement(on_object, coverage)
    assert area.item() == 0.125 and hit.item() == 1.0 and ratio.item() == pytest.approx(0.5 / 0.125)
    uniform = torch.ones(1, 2, 2, 2)
    ratio, hit, _ = agreement(uniform, coverage)
    assert ratio.item() == pytest.approx(1.0)
    elsewhere = torch.zeros(1, 2, 2, 2)
    elsewhere[0, 0, 1, 1] = 1.0
    ratio, hit, _ = agreement(elsewhere, coverage)
    assert ratio.item() == 0.0 and hit.item() == 0.0


@pytest.fixture(scope="module")
def held_out():
    return generate("motion", 200, seed=HELD_OUT_SEED, num_frames=8, size=64)


def test_divided_demo_rollout_looks_at_the_moving_object(held_out) -> None:
    loaded = load_checkpoint(demo_checkpoint("divided_space_time", "motion"))
    result = evaluate(loaded, held_out)
    assert result.clips == 200
    assert result.mass_ratio >= 2.0, result
    baseline = evaluate(loaded, held_out, last_layer_attention)
    assert baseline.mass_ratio > 1.0, baseline
