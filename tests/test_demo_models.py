"""The shipped demo models, measured on freshly generated held-out clips (a seed no model was trained or validated on).

The accuracies are computed here from the logits, independently of the code that wrote the model card, and
must agree with the card and with `analysis/results/demo_models.json` (same seed, same clips: same numbers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.ablations import (
    DEMO_DIR,
    DEMO_MODELS,
    DIVIDED_GOAL,
    HELDOUT_CLIPS,
    HELDOUT_SEED,
    demo_configs,
)
from analysis.faithfulness import EXPLAINERS, evaluate
from timesformer.checkpoints import load_checkpoint
from timesformer.datasets import class_names, generate, motion_twin, to_clip_tensor
from timesformer.model import PRESETS

ROOT = Path(__file__).resolve().parents[1]
CARD_RESULTS = ROOT / "analysis" / "results" / "demo_models.json"
TOLERANCE = 0.02


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Evaluation only: one thread avoids OpenMP spin-waiting on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def heldout() -> dict:
    size = PRESETS["demo"].image_size
    return {dataset: generate(dataset, HELDOUT_CLIPS, HELDOUT_SEED, size=size) for dataset in ("motion", "appearance")}


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD_RESULTS.read_text())["models"]


@pytest.fixture(scope="module")
def measure(heldout: dict):
    """Held-out metrics of a shipped model, computed once per model."""
    cache: dict[str, dict[str, float]] = {}

    def metrics(name: str) -> dict[str, float]:
        if name not in cache:
            cache[name] = _measure(name, heldout[demo_configs()[name].dataset])
        return cache[name]

    return metrics


def _measure(name: str, videos) -> dict[str, float]:
    loaded = load_checkpoint(DEMO_DIR / f"{name}.safetensors")
    assert (loaded.config.num_frames, loaded.config.image_size) == videos.frames.shape[1:3]
    with torch.no_grad():
        logits = torch.cat(
            [
                loaded.model(to_clip_tensor(videos.frames[i : i + 50], loaded.mean, loaded.std))
                for i in range(0, len(videos), 50)
            ]
        ).numpy()
    rows = np.arange(len(videos))
    correct = logits.argmax(1) == videos.labels
    result = {"accuracy": float(correct.mean())}
    if videos.dataset == "motion":
        twins = np.array([motion_twin(int(label)) for label in videos.labels])
        result["twin_accuracy"] = float((logits[rows, videos.labels] > logits[rows, twins]).mean())
        names = class_names("motion")
        pairs = [(label, motion_twin(label)) for label in range(len(names)) if label < motion_twin(label)]
        result["pair_accuracy"] = {
            f"{names[a]}/{names[b]}": float(correct[np.isin(videos.labels, (a, b))].mean()) for a, b in pairs
        }
    return result


def test_all_demo_models_are_shipped_small_and_documented() -> None:
    paths = [DEMO_DIR / f"{name}.safetensors" for name in DEMO_MODELS]
    assert all(path.exists() for path in paths), [p.name for p in paths if not p.exists()]
    assert sum(path.stat().st_size for path in DEMO_DIR.glob("*.safetensors")) < 30 * 2**20
    for name, path in zip(DEMO_MODELS, paths):
        meta = load_checkpoint(path).metadata
        assert meta["dataset"] == demo_configs()[name].dataset
        assert meta["sampling_stride"] == "1"
        assert (
            meta["command"].startswith("python -m timesformer train")
            and f"--out {path.relative_to(ROOT)}" in meta["command"]
        )


@pytest.mark.parametrize("name", [n for n in DEMO_MODELS if not n.endswith("_images")])
def test_heldout_accuracy_matches_the_model_card(name: str, measure, card: dict) -> None:
    measured = measure(name)
    for metric, value in measured.items():
        assert value == pytest.approx(card[name][metric], abs=TOLERANCE), metric
    card_text = (DEMO_DIR / "MODEL_CARD.md").read_text()
    assert f"{100 * card[name]['accuracy']:.1f}%" in card_text


def test_divided_space_time_reaches_the_goal_on_motion(measure) -> None:
    """Issue #4: at least 90% held-out accuracy, and as much twin accuracy (300 clips: one standard error is 1.5
    points at 92%); the first stage alone stays short of it."""
    divided = measure("divided_space_time_motion")
    assert divided["accuracy"] >= DIVIDED_GOAL and divided["twin_accuracy"] >= DIVIDED_GOAL
    assert measure("divided_space_time_motion_stage1")["accuracy"] < DIVIDED_GOAL


def test_divided_space_time_tells_time_reversed_twins_apart(measure) -> None:
    """With 8 px patches and temporal attention started on the previous frame it sees the order of frames:
    well above the 50% of a model blind to it (300 clips: one standard error is 2.9 points)."""
    assert measure("divided_space_time_motion")["twin_accuracy"] >= 0.6


def test_space_only_cannot_tell_time_reversed_twins(measure) -> None:
    """It averages per-frame features, so it is blind to the order of frames: about 50% on twin pairs."""
    assert measure("space_only_motion")["twin_accuracy"] <= 0.60


FAITHFULNESS_CLIPS = 200
FAITHFULNESS_SEED = 2024
"""Held-out clips for the rollout check: a seed no demo model was trained, validated or carded on."""


def test_divided_rollout_puts_twice_its_share_of_relevance_on_the_moving_object() -> None:
    """Issue #5: on 200 held-out clips the divided model's rollout puts >= 2x the object's area share on it.

    A uniform map scores 1x; the naive last-layer CLS attention is measured beside it (`bench/rollout_masks.py`
    prints both for every scheme)."""
    loaded = load_checkpoint(DEMO_DIR / "divided_space_time_motion.safetensors")
    clips = generate(
        "motion", FAITHFULNESS_CLIPS, FAITHFULNESS_SEED, loaded.config.num_frames, loaded.config.image_size
    )
    rollout = evaluate(loaded, clips, EXPLAINERS["rollout"])
    assert rollout.clips == FAITHFULNESS_CLIPS
    assert rollout.mass_ratio >= 2.0, rollout
