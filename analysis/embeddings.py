"""Clip embeddings, the paper's Figure 8: CLS features, their t-SNE map, and how well they separate the classes.

Fig. 8 compares divided space-time, space-only and the image model it started from (per-frame features,
averaged) by eye. Here separability is also measured on the features themselves, not on the 2-D map (t-SNE
distorts distances): leave-one-out kNN accuracy and the silhouette score. Features are cached on disk, keyed
by a hash of the model (weights and config) and of the clip data, because they are the slow part.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from sklearn.manifold import TSNE
from sklearn.metrics import pairwise_distances, silhouette_score
from threadpoolctl import threadpool_limits

from timesformer.model import TimeSformer
from timesformer.video import MEAN, STD, normalise

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "timesformer-explorer" / "features"

FeatureKind = Literal["clip", "frame_averaged"]
TSNE_MIN_POINTS = 3


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise ValueError(
            f"expected uint8 RGB clips [n, T, H, W, 3], got {getattr(frames, 'dtype', type(frames))} {shape}"
        )
    if len(frames) == 0:
        raise ValueError("no clips to embed")


def clip_features(
    model: TimeSformer,
    frames: np.ndarray,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    batch_size: int = 32,
) -> np.ndarray:
    """The CLS feature of every clip: uint8 RGB [n, T, H, W, 3] -> float32 [n, D].

    Clips are normalised batch by batch, so only one batch is ever held as floats. The model runs in eval mode
    (restored afterwards) and in its own dtype.
    """
    _check_frames(frames)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batches = [
                model.forward_features(normalise(frames[i : i + batch_size], mean, std).to(dtype))
                for i in range(0, len(frames), batch_size)
            ]
    finally:
        model.train(was_training)
    return torch.cat(batches).float().numpy()


def frame_averaged_features(
    model: TimeSformer,
    frames: np.ndarray,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    batch_size: int = 32,
) -> np.ndarray:
    """The image-model baseline of Fig. 8: each frame run alone as a 1-frame clip, features averaged per clip."""
    _check_frames(frames)
    n, t = frames.shape[:2]
    single = rearrange(frames, "n t h w c -> (n t) 1 h w c")
    per_frame = clip_features(model, single, mean, std, batch_size * t)
    return rearrange(per_frame, "(n t) d -> n t d", n=n, t=t).mean(axis=1)


_EXTRACTORS = {"clip": clip_features, "frame_averaged": frame_averaged_features}


def model_fingerprint(model: TimeSformer) -> str:
    """A hash of the config and every weight: two models share it only if they compute the same features."""
    digest = hashlib.blake2b(json.dumps(model.config.to_dict(), sort_keys=True).encode(), digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def data_fingerprint(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> str:
    """A hash of the clips' bytes and shape and of the normalisation applied to them."""
    digest = hashlib.blake2b(f"{frames.shape}:{list(mean)}:{list(std)}".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(frames).data)
    return digest.hexdigest()


def cached_features(
    model: TimeSformer,
    frames: np.ndarray,
    kind: FeatureKind = "clip",
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    batch_size: int = 32,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """`clip_features` or `frame_averaged_features`, read from `cache_dir` when this model has seen these clips.

    The file is `<model hash>-<data hash>-<kind>.npz` in `cache_dir` (default DEFAULT_CACHE_DIR); it is
    written atomically, and an unreadable file is recomputed and replaced.
    """
    if kind not in _EXTRACTORS:
        raise ValueError(f"feature kind must be one of {', '.join(_EXTRACTORS)}, not {kind!r}")
    _check_frames(frames)
    folder = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    path = folder / f"{model_fingerprint(model)}-{data_fingerprint(frames, mean, std)}-{kind}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                return stored["features"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged file: recompute below and overwrite it
    features = _EXTRACTORS[kind](model, frames, mean, std, batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as handle:
        np.savez(handle, features=features)
    os.replace(handle.name, path)
    return features


def effective_perplexity(perplexity: float, n: int) -> float:
    """t-SNE needs perplexity < n: the requested value, clipped to n - 1."""
    return float(min(perplexity, n - 1))


def tsne(
    features: np.ndarray,
    perplexity: float = 30.0,
    learning_rate: float | Literal["auto"] = "auto",
    max_iter: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """2-D t-SNE map [n, 2] of features [n, D]; deterministic for a given seed (PCA initialisation)."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < TSNE_MIN_POINTS:
        raise ValueError(f"t-SNE needs features [n >= {TSNE_MIN_POINTS}, D], got shape {features.shape}")
    if perplexity <= 0 or max_iter < 250:
        raise ValueError(f"perplexity must be positive and max_iter at least 250, got {perplexity} and {max_iter}")
    # One thread: scikit-learn's OpenMP threads spin against torch's pool, and 50 points then took 35 s, not 0.2 s.
    with threadpool_limits(1):
        return TSNE(
            perplexity=effective_perplexity(perplexity, len(features)),
            learning_rate=learning_rate,
            max_iter=max_iter,
            init="pca",
            random_state=seed,
        ).fit_transform(features)


@dataclass(frozen=True)
class Separability:
    """How well features separate classes: LOO kNN accuracy, silhouette in [-1, 1], and chance for reference."""

    knn_accuracy: float
    silhouette: float
    chance: float
    """Accuracy of always guessing the most frequent class."""
    k: int


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5, metric: str = "euclidean") -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote; ties go to the class whose voters are nearer."""
    features, labels = _checked(features, labels)
    if not 1 <= k < len(labels):
        raise ValueError(f"k must be in [1, {len(labels) - 1}] for {len(labels)} samples, got {k}")
    distances = pairwise_distances(features, metric=metric)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    classes, codes = np.unique(labels, return_inverse=True)
    votes = np.zeros((len(labels), len(classes)))
    rank_bonus = (k - np.arange(k)) / (k * k + 1)  # < 1 in total: decides ties only, in favour of nearer voters
    np.add.at(votes, (np.arange(len(labels))[:, None], codes[nearest]), 1 + rank_bonus)
    return float((votes.argmax(axis=1) == codes).mean())


def separability(features: np.ndarray, labels: np.ndarray, k: int = 5, metric: str = "euclidean") -> Separability:
    """kNN accuracy and silhouette score of the features (not of a 2-D map), with chance level."""
    features, labels = _checked(features, labels)
    counts = np.unique(labels, return_counts=True)[1]
    if not 2 <= len(counts) < len(labels):
        raise ValueError(f"separability needs 2 to n-1 classes, got {len(counts)} classes for {len(labels)} samples")
    return Separability(
        knn_accuracy(features, labels, k, metric),
        float(silhouette_score(features, labels, metric=metric)),
        float(counts.max() / len(labels)),
        k,
    )


def _checked(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or labels.shape != (len(features),):
        raise ValueError(f"expected features [n, D] and labels [n], got {features.shape} and {labels.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    return features, labels
