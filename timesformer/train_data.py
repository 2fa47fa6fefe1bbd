"""The clips a run trains and validates on, and its accuracy on a set of them.

Data is generated once (`generate` is deterministic from a seed); batches index into it. Validation clips come
from `data_seed + 1`, a stream disjoint from the training clips; `focus` classes get `focus_size` more training
clips from `data_seed + 2` (a pair that a balanced mix leaves unlearnt). With `augment="video"` training clips
take a video file's path (`timesformer.augment`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from . import augment, datasets, drawing, video
from .augment import VideoPath
from .datasets import VideoSet, cached, concatenate, generate
from .train_config import TrainConfig
from .video import normalise


@dataclass
class Splits:
    """Training and validation clips, generated once."""

    train: VideoSet
    val: VideoSet


GENERATOR = hashlib.sha256(
    b"".join(Path(module.__file__).read_bytes() for module in (datasets, drawing, augment, video))
).hexdigest()
"""The code that draws clips: clips, files and runs kept from other code are not reused."""


def make_splits(config: TrainConfig) -> Splits:
    """The run's training and validation clips, of every class or of `config.classes`.

    With `augment="video"` training clips take a video file's path with the paper's random scale and crop,
    validation clips the test path (`timesformer.augment`). TIMESFORMER_CLIP_CACHE names a folder where clips are
    kept between runs (runs of one recipe share them); results are the same with or without it."""
    model_config = config.model_config()
    frames, size = model_config.num_frames, model_config.image_size
    folder = os.environ.get("TIMESFORMER_CLIP_CACHE") or None
    train_path, val_path = (VideoPath(), VideoPath(train=False)) if config.augment == "video" else (None, None)

    def clips(n: int, seed: int, names: Sequence[str] | None, render: VideoPath | None) -> VideoSet:
        key = json.dumps(
            [config.dataset, n, seed, frames, size, names and list(names), render and asdict(render), GENERATOR]
        )
        return cached(
            hashlib.sha256(key.encode()).hexdigest()[:20],
            lambda: generate(config.dataset, n, seed, frames, size, names, render),
            folder,
        )

    classes = config.class_subset
    train = clips(config.train_size, config.data_seed, classes, train_path)
    if config.focus_size:
        train = concatenate(train, clips(config.focus_size, config.data_seed + 2, config.focus_classes, train_path))
    return Splits(train, clips(config.val_size, config.data_seed + 1, classes, val_path))


def clips(videos: VideoSet, index: Tensor | slice) -> tuple[Tensor, Tensor]:
    """A batch: normalised clips [B, 3, T, H, W] and labels [B]."""
    index = index.numpy() if isinstance(index, Tensor) else index
    return normalise(videos.frames[index]), torch.tensor(videos.labels[index])


@torch.no_grad()
def predict_logits(model: nn.Module, videos: VideoSet, batch_size: int = 64) -> Tensor:
    """Logits [n, classes] of every clip, in eval mode (the model is put back in its mode after)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(clips(videos, slice(i, i + batch_size))[0]) for i in range(0, len(videos), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, videos: VideoSet, batch_size: int = 64) -> float:
    return (predict_logits(model, videos, batch_size).argmax(1).numpy() == videos.labels).mean().item()
