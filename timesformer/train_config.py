"""What decides a training run: `TrainConfig`, whose fields are also the flags of `python -m timesformer train`.

One config fixes a run completely (same config, same threads, same bits), so `TrainConfig.command()` is the exact
command that regenerates a model, and it is stored in the model's metadata.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import asdict, dataclass, field, fields
from typing import get_type_hints

from .datasets import DATASETS
from .model import PRESETS, TimeSformerConfig, preset
from .schemes import SCHEMES
from .temporal_init import TEMPORAL_INITS


class TrainError(ValueError):
    """A training run that cannot start or resume, with the reason in words."""


def _option(text: str, choices: tuple[str, ...] = ()) -> dict:
    return {"help": text, "choices": choices}


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result; each field is a flag of `python -m timesformer train`."""

    dataset: str = field(default="motion", metadata=_option("generated dataset", tuple(DATASETS)))
    scheme: str = field(default="divided_space_time", metadata=_option("attention scheme", tuple(SCHEMES)))
    preset: str = field(default="demo", metadata=_option("model size", tuple(PRESETS)))
    patch_size: int = field(default=0, metadata=_option("patch side in pixels; 0: the preset's"))
    pos_embed: str = field(
        default="space_time", metadata=_option("position embedding (Table 4)", ("space_time", "space", "none"))
    )
    init: str = field(
        default="",
        metadata=_option(
            "our .safetensors to start from: an image model to inflate, or a model of this architecture to train on; "
            "empty: from scratch"
        ),
    )
    temporal_init: str = field(
        default="paper",
        metadata=_option(
            "temporal attention's start: the paper's, or head 0 on the previous frame (timesformer/temporal_init.py)",
            TEMPORAL_INITS,
        ),
    )
    augment: str = field(
        default="none",
        metadata=_option(
            "none: clips as drawn; video: through a video file's path, randomised (timesformer/augment.py)",
            ("none", "video"),
        ),
    )
    classes: str = field(
        default="",
        metadata=_option("comma-separated classes to train and validate on (the head keeps every class); empty: all"),
    )
    train_size: int = field(default=2000, metadata=_option("generated training clips"))
    val_size: int = field(default=300, metadata=_option("generated validation clips"))
    focus: str = field(default="", metadata=_option("comma-separated classes given focus_size extra training clips"))
    focus_size: int = field(default=0, metadata=_option("extra training clips of the focus classes (data_seed + 2)"))
    data_seed: int = field(
        default=0, metadata=_option("seed of the training clips; validation uses data_seed + 1, focus clips + 2")
    )
    seed: int = field(default=0, metadata=_option("seed of the weights and the shuffling"))
    epochs: int = field(default=10, metadata=_option("passes over the training clips"))
    batch_size: int = field(default=32, metadata=_option("clips per step"))
    optimizer: str = field(
        default="adamw", metadata=_option("adamw, or the paper's sgd (momentum 0.9)", ("adamw", "sgd"))
    )
    lr: float = field(default=1e-3, metadata=_option("peak learning rate (paper, SGD: 0.005)"))
    weight_decay: float = field(default=0.05, metadata=_option("weight decay (paper, SGD: 1e-4)"))
    schedule: str = field(
        default="cosine", metadata=_option("after warmup: cosine to 0, or the paper's steps", ("cosine", "step"))
    )
    warmup_epochs: float = field(default=1.0, metadata=_option("linear warmup length in epochs"))
    label_smoothing: float = field(default=0.0, metadata=_option("cross-entropy label smoothing"))
    drop_path: float = field(default=0.0, metadata=_option("stochastic depth rate of the last block"))
    threads: int = field(
        default=0, metadata=_option("torch threads; 0: all cores (shared by the processes torchrun starts here)")
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise TrainError(f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}")
        if min(self.train_size, self.val_size, self.epochs, self.batch_size) < 1:
            raise TrainError("train_size, val_size, epochs and batch_size must be positive")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or min(self.seed, self.data_seed) < 0:
            raise TrainError("lr must be positive; weight_decay, warmup_epochs and seeds non-negative")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.drop_path < 1:
            raise TrainError("label_smoothing and drop_path must be in [0, 1)")
        if self.patch_size < 0:
            raise TrainError("patch_size must be positive, or 0 for the preset's")
        if set(_names(self.classes)) - set(DATASETS[self.dataset].classes):
            raise TrainError(
                f"classes must be some of {self.dataset}'s ({', '.join(DATASETS[self.dataset].classes)}), "
                f"got {self.classes!r}"
            )
        unknown = set(self.focus_classes) - set(DATASETS[self.dataset].classes)
        if unknown or self.focus_size < 0 or bool(self.focus_classes) != bool(self.focus_size):
            raise TrainError(
                f"focus needs classes of {self.dataset} ({', '.join(DATASETS[self.dataset].classes)}) "
                f"and a positive focus_size, or neither; got focus={self.focus!r}, "
                f"focus_size={self.focus_size}"
            )
        try:
            self.model_config()
        except ValueError as error:  # e.g. a patch that does not tile the frame
            raise TrainError(str(error)) from None

    @property
    def focus_classes(self) -> tuple[str, ...]:
        return _names(self.focus)

    @property
    def class_subset(self) -> tuple[str, ...] | None:
        """The classes the run sees, or None for all of them."""
        return _names(self.classes) or None

    def model_config(self) -> TimeSformerConfig:
        """The architecture: the preset with this dataset's classes and clip length (1 frame for images), and
        `patch_size` if set (a finer grid of tokens costs time but lets a small model see motion inside a patch)."""
        frames = 1 if self.dataset == "images" else PRESETS[self.preset].num_frames
        patch = self.patch_size or PRESETS[self.preset].patch_size
        return preset(
            self.preset,
            scheme=self.scheme,
            pos_embed=self.pos_embed,
            num_frames=frames,
            patch_size=patch,
            num_classes=len(DATASETS[self.dataset].classes),
            drop_path=self.drop_path,
        )

    def command(self, out: str = "", state: str = "") -> str:
        """The exact command line that runs this config (flags for the fields that differ from the default)."""
        args = ["python", "-m", "timesformer", "train"]
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                args += [f"--{f.name.replace('_', '-')}", str(value)]
        for flag, value in (("--out", out), ("--state", state)):
            if value:
                args += [flag, value]
        return shlex.join(args)

    def to_dict(self) -> dict:
        return asdict(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, plus where the model and the resumable state go."""
    types = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=types[f.name],
            default=f.default,
            choices=f.metadata["choices"] or None,
            help=f"{f.metadata['help']} (default: %(default)s)",
        )
    parser.add_argument("--out", required=True, help="the trained model, our .safetensors format")
    parser.add_argument("--state", default="", help="resumable state, written every epoch; resumed from if it exists")
