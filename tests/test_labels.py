"""Class names for real checkpoints: the shipped public lists, given to a checkpoint that names no classes of its
own when its head has their count, and the caller's override."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_fixtures import tiny_hf_config
from test_checkpoints import mmaction_state_dict
from transformers import TimesformerForVideoClassification

from timesformer import TimeSformer, preset
from timesformer.checkpoints import CheckpointError, load_checkpoint
from timesformer.key_names import official_state_dict
from timesformer.label_sets import LABEL_SETS, label_set


def official_pyth(folder: Path, num_classes: int) -> Path:
    """A `.pyth` in the official layout (`model_state`, keys `model.*`) with a head of `num_classes`."""
    path = folder / f"official_{num_classes}.pyth"
    torch.save({"model_state": official_state_dict(TimeSformer(preset("tiny", num_classes=num_classes)))}, path)
    return path


def hf_folder(folder: Path, num_labels: int, id2label: dict[int, str] | None = None) -> Path:
    config = tiny_hf_config(num_hidden_layers=1, num_labels=num_labels)
    if id2label:
        config.id2label, config.label2id = id2label, {name: i for i, name in id2label.items()}
    TimesformerForVideoClassification(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("name", LABEL_SETS)
def test_the_shipped_lists_have_their_counts_and_distinct_names(name: str) -> None:
    labels = label_set(name)
    assert len(labels) == LABEL_SETS[name] == len(set(labels)) and all(label.strip() == label != "" for label in labels)


def test_kinetics_and_ssv2_names_sit_at_the_official_ids() -> None:
    k400, ssv2 = label_set("kinetics400"), label_set("something-something-v2")
    assert (k400[0], k400[232], k400[399]) == ("abseiling", "playing guitar", "zumba")
    assert label_set("kinetics600")[:2] == ("abseiling", "acting in play")
    assert (ssv2[0], ssv2[16], ssv2[140]) == (
        "Approaching something with your camera",
        "Holding something",
        "Spinning something that quickly stops spinning",
    )


def test_an_official_400_class_checkpoint_speaks_kinetics(tmp_path: Path) -> None:
    loaded = load_checkpoint(official_pyth(tmp_path, 400))
    assert loaded.source_format == "official" and loaded.labels[232] == "playing guitar"
    assert loaded.labels == list(label_set("kinetics400"))


def test_an_unknown_class_count_keeps_numbered_names(tmp_path: Path) -> None:
    assert load_checkpoint(official_pyth(tmp_path, 10)).labels == [f"class {i}" for i in range(10)]


def test_mmaction2_and_bare_hugging_face_heads_get_their_dataset(tmp_path: Path) -> None:
    mmaction = tmp_path / "mmaction.pth"
    torch.save({"state_dict": mmaction_state_dict(TimeSformer(preset("tiny", num_classes=48)))}, mmaction)
    assert load_checkpoint(mmaction).labels == list(label_set("diving48"))
    bare = tmp_path / "hf.bin"
    torch.save(TimesformerForVideoClassification.from_pretrained(hf_folder(tmp_path / "hf", 174)).state_dict(), bare)
    assert load_checkpoint(bare, num_heads=2).labels == list(label_set("something-something-v2"))


def test_a_hugging_face_folder_keeps_its_own_names(tmp_path: Path) -> None:
    own = {i: f"my action {i}" for i in range(400)}
    assert load_checkpoint(hf_folder(tmp_path / "own", 400, own)).labels == list(own.values())
    # transformers writes LABEL_0, LABEL_1, ... when it was given no names: those are none of its own
    assert load_checkpoint(hf_folder(tmp_path / "unnamed", 174)).labels == list(label_set("something-something-v2"))


def test_the_caller_overrides_the_names(tmp_path: Path) -> None:
    path = official_pyth(tmp_path, 400)
    assert load_checkpoint(path, labels=[f"mine {i}" for i in range(400)]).labels[232] == "mine 232"
    assert load_checkpoint(official_pyth(tmp_path, 600), labels="kinetics600").labels == list(label_set("kinetics600"))
    with pytest.raises(CheckpointError, match="600 names for a model of 400 classes"):
        load_checkpoint(path, labels="kinetics600")
    with pytest.raises(CheckpointError, match="unknown label set 'k400'"):
        load_checkpoint(path, labels="k400")
    with pytest.raises(CheckpointError, match="3 names for a model of 400 classes"):
        load_checkpoint(path, labels=["a", "b", "c"])
