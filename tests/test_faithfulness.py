import numpy as np
import pytest
import torch

from analysis.faithfulness import agreement, patch_coverage


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
