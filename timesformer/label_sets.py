"""Class names of the public datasets TimeSformer checkpoints are released for, shipped in `labels/`.

Official `.pyth`, MMAction2 and bare Hugging Face state dicts carry no class names, only a head of 400, 600, 174
or 48 outputs; those counts are Kinetics-400, Kinetics-600, Something-Something-v2 and Diving-48, one count per
dataset, so the count alone picks the list (`labels/README.md` says where each list comes from).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files

from .checkpoint_checks import CheckpointError

LABEL_SETS = {"kinetics400": 400, "kinetics600": 600, "something-something-v2": 174, "diving48": 48}
"""The shipped lists by name, with their class counts (all different)."""

Labels = str | Sequence[str]
"""What a caller may give for a model's class names: a LABEL_SETS name, or the names themselves."""


@cache
def label_set(name: str) -> tuple[str, ...]:
    """The class names of a shipped list, class i on line i."""
    if name not in LABEL_SETS:
        raise ValueError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}")
    return tuple((files(__package__) / "labels" / f"{name}.txt").read_text(encoding="utf-8").splitlines())


def dataset_for(num_classes: int) -> str | None:
    """The shipped list with this many classes, if any."""
    return next((name for name, count in LABEL_SETS.items() if count == num_classes), None)


def numbered(count: int) -> list[str]:
    """The names of a model whose classes nobody named: "class 0", "class 1", ..."""
    return [f"class {i}" for i in range(count)]


def default_labels(num_classes: int) -> list[str]:
    """The names for a head that came without any: its dataset's, if the count is one of LABEL_SETS', else numbered."""
    name = dataset_for(num_classes)
    return list(label_set(name)) if name else numbered(num_classes)


def resolve_labels(labels: Labels, num_classes: int) -> list[str]:
    """A caller's class names (a set name or a list), checked to give one name per class."""
    names = list(label_set(labels)) if isinstance(labels, str) else list(labels)
    if len(names) != num_classes or not all(isinstance(name, str) for name in names):
        given = f"the {labels} set has" if isinstance(labels, str) else "the given labels are"
        raise ValueError(f"{given} {len(names)} names for a model of {num_classes} classes; give one name per class")
    return names


def hf_labels(config_json: dict, where: str) -> list[str]:
    """The class names of a Hugging Face config's id2label; none for transformers' stand-ins (LABEL_0, LABEL_1,
    ...), which it writes when it was given no names."""
    id2label = config_json.get("id2label") or {}
    try:
        order = sorted(id2label, key=int)
    except ValueError:
        order = None
    in_order = order is not None and [int(k) for k in order] == list(range(len(order)))
    if not in_order or not all(isinstance(id2label[k], str) for k in order):
        raise CheckpointError(f"{where}: id2label must map the numbers 0 to N-1 to label names")
    names = [id2label[k] for k in order]
    return [] if names == [f"LABEL_{i}" for i in range(len(names))] else names
