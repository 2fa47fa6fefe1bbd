"""Accuracy measured the way a user meets a model: clips written as H.264 files, read back as `predict` reads them.

Every accuracy the project reports for its demo models comes from here. Held-out clips are drawn from a seed no
model trained or validated on, at a side no training clip was drawn at (`HELDOUT`), written as mp4 and read
with `timesformer.inference.read_clip` (decode, the model's frame sampling, short side resized, centre crop,
its normalisation), then classified by the model: the path of `python -m timesformer predict`, less the child
process that first checks an unknown file (it returns the same frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from timesformer.checkpoints import LoadedModel
from timesformer.datasets import class_names, generate, motion_twin, write_mp4
from timesformer.inference import read_clip
from timesformer.train_data import GENERATOR


@dataclass(frozen=True)
class ClipFiles:
    """Which generated clips are written: dataset, how many, seed, side in px, frames, of which classes (None:
    all); written once, kept."""

    dataset: str
    clips: int
    seed: int
    size: int
    frames: int
    classes: tuple[str, ...] | None = None

    def write(self, folder: str | Path) -> list[tuple[Path, int]]:
        """(path, label) of each clip, written under `folder` unless this generator wrote them there already."""
        subset = "-" + "+".join(self.classes) if self.classes else ""
        name = f"{self.dataset}{subset}-seed{self.seed}-{self.clips}x{self.frames}f-{self.size}px-{GENERATOR[:12]}"
        place = Path(folder) / name
        names = class_names(self.dataset)
        if not (place / "complete").exists():
            drawn = generate(self.dataset, self.clips, self.seed, self.frames, self.size, self.classes)
            place.mkdir(parents=True, exist_ok=True)
            for i, (frames, label) in enumerate(zip(drawn.frames, drawn.labels)):
                write_mp4(frames, place / f"{i:04d}_{names[label]}.mp4")
            (place / "complete").touch()
        return [(path, names.index(path.stem.split("_", 1)[1])) for path in sorted(place.glob("*.mp4"))]


HELDOUT_SEED = 777
HELDOUT = {
    **{dataset: ClipFiles(dataset, 300, HELDOUT_SEED, 120, 16) for dataset in ("motion", "appearance")},
    "images": ClipFiles("images", 300, HELDOUT_SEED, 120, 1),
}
"""The held-out clips of the model card: seed 777 (training and validation use seeds 0-7), 120 px (training draws
its scenes at multiples of 16 px), 16 frames (the video models sample 8 of them), 300 per dataset."""


ClipReader = Callable[[Path], torch.Tensor]
"""A video file -> the clip tensor [1, 3, T, S, S] a model reads from it."""


def predict_reader(loaded: LoadedModel) -> ClipReader:
    """Read a file exactly as `predict` does for this checkpoint (its sampling, size, normalisation; one crop)."""
    return lambda path: read_clip(path, loaded).tensor


def video_logits(model: nn.Module, files: list[tuple[Path, int]], read: ClipReader) -> torch.Tensor:
    """Logits [n, classes] of each file as `read` gives it to the model."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(read(path)).float() for path, _ in files])
    model.train(was_training)
    return logits


def scores(logits: torch.Tensor, labels: np.ndarray, dataset: str) -> dict:
    """Top-1 accuracy; on `motion` also the twin accuracy (true class above its time-reversed twin; 50% for a
    model blind to frame order) and the accuracy per twin pair (50%: the attribute is known, not its direction)."""
    correct = logits.argmax(1).numpy() == labels
    result: dict = {"accuracy": float(correct.mean())}
    if dataset == "motion":
        rows, twins = np.arange(len(labels)), np.array([motion_twin(int(label)) for label in labels])
        values = logits.numpy()
        result["twin_accuracy"] = float((values[rows, labels] > values[rows, twins]).mean())
        names = class_names("motion")
        firsts = np.minimum(labels, twins)
        result["pair_accuracy"] = {
            f"{names[first]}/{names[motion_twin(first)]}": float(correct[firsts == first].mean())
            for first in np.unique(firsts).tolist()
        }
    return result


def measure(model: nn.Module, files: ClipFiles, folder: str | Path, read: ClipReader) -> dict:
    """The model's scores on `files`, read through the video path by `read`."""
    written = files.write(folder)
    labels = np.array([label for _, label in written])
    return scores(video_logits(model, written, read), labels, files.dataset)
