"""From a video file to a prediction, with the paper's test-time sampling and crop averaging."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checkpoints import LoadedModel
from .cost import check_memory
from .model import Inspection
from .video import Clip, load_clip

OFFICIAL_STRIDES = {8: 32, 16: 16, 96: 4}
"""Frame stride of the official models by clip length: 8x32, 16x16 (HR), 96x4 (L)."""


@dataclass
class Prediction:
    """Class probabilities (softmax averaged over the spatial crops) and the label of each class."""

    probabilities: Tensor
    labels: list[str]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        values, indices = self.probabilities.topk(min(k, len(self.labels)))
        return [(self.labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def sampling_stride(loaded: LoadedModel) -> int:
    """The stride the model was trained with, if its checkpoint says; else the official one for its length."""
    frames = loaded.config.num_frames
    if "sampling_stride" in loaded.metadata:
        return int(loaded.metadata["sampling_stride"])
    return OFFICIAL_STRIDES.get(frames, max(1, 256 // frames))


def sampling_mode(loaded: LoadedModel) -> str:
    """How the model's frames are taken from a video: "uniform" segments if its checkpoint says so (SSv2-style
    training), else "center" (a clip of `sampling_stride` from the middle, the official K400 test)."""
    return loaded.metadata.get("sampling", "center")


def read_clip(path: str | Path, loaded: LoadedModel, crops: int = 1, untrusted: bool = False) -> Clip:
    """The clip this model expects from a video file: its frame count, sampling, size and normalisation."""
    config = loaded.config
    return load_clip(
        path,
        num_frames=config.num_frames,
        stride=sampling_stride(loaded),
        crop_size=config.image_size,
        crops=crops,
        mean=loaded.mean,
        std=loaded.std,
        mode=sampling_mode(loaded),
        untrusted=untrusted,
    )


def _input(loaded: LoadedModel, views: Tensor, capture: bool) -> Tensor:
    """Views [crops, 3, T, H, W] in the model's dtype, after checking that the forward fits in memory."""
    model = loaded.model
    check_memory(model.config, model.grid_of(views), batch=views.shape[0], capture=capture)
    return views.to(next(model.parameters()).dtype)


def predict(loaded: LoadedModel, views: Tensor) -> Prediction:
    """Softmax averaged over the views of one clip (1 or 3 spatial crops), as the paper tests."""
    with torch.inference_mode():
        logits = loaded.model(_input(loaded, views, capture=False)).float()
    return Prediction(logits.softmax(-1).mean(0), loaded.labels)


def inspect(loaded: LoadedModel, views: Tensor) -> Inspection:
    """Logits, features and attention of every view; refused up front if the attention would not fit."""
    with torch.inference_mode():
        return loaded.model.inspect(_input(loaded, views, capture=True))
