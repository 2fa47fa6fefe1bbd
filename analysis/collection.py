"""A batch output folder (`python -m analysis batch ... --what features`) as a t-SNE map of its videos.

The app opens a folder by its path, so everything that can be wrong with one (no such path, not a batch output,
written without features, too few videos analysed yet) is a `CollectionError` whose message the app shows as is.
t-SNE costs O(n log n) per iteration and a browser draws some thousands of markers smoothly, so a large
collection is embedded through a seeded random subsample of `MAX_POINTS` videos, and the caption says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.batch_files import BatchError, finished_shards, load_output, read_manifest
from analysis.embeddings import TSNE_MIN_POINTS, Separability, separability, tsne

MAX_POINTS = 5000
COLOURINGS = {"label": "true label", "prediction": "predicted class"}
"""What a map is coloured by, in order of preference, and how the caption says it."""


class CollectionError(ValueError):
    """A folder that cannot be embedded, said in words the app can show."""


@dataclass(frozen=True)
class Collection:
    """The embeddable part of a batch output folder: row i of `videos` is the video of `features[i]`."""

    features: np.ndarray
    """CLS features [n, D], float32."""
    videos: pd.DataFrame
    """`path`, `label` (None where the input list gave none), `prediction` (None if not asked for)."""
    analysed: int
    """Videos with a result in the finished shards, before subsampling."""
    errors: int
    """Videos that could not be read (rows of the errors table): not embedded."""
    pending: int
    """Videos of the input list in no finished shard yet (a run still going, or stopped)."""
    checkpoint: str
    checkpoint_sha256: str
    seed: int

    @property
    def colour_column(self) -> str | None:
        """`label` when every video has a true label, else `prediction` when it was asked for, else None."""
        return next((column for column in COLOURINGS if self.videos[column].notna().all()), None)

    def describe(self) -> str:
        """One line of counts for a caption."""
        shown = len(self.videos)
        parts = [
            f"{_count(shown, 'video')} embedded"
            if shown == self.analysed
            else f"{shown:,} of {_count(self.analysed, 'video')} embedded (a random subsample, seed {self.seed}: "
            f"t-SNE is capped at {shown:,} points)",
            f"{_count(self.errors, 'error row')} skipped",
        ]
        if self.pending:
            parts.append(f"{_count(self.pending, 'video')} not finished yet")
        parts += [
            f"{self.features.shape[1]}-dim CLS features",
            f"model {Path(self.checkpoint).name} (sha256 {self.checkpoint_sha256[:12]})",
            f"coloured by {COLOURINGS.get(self.colour_column, 'nothing: no labels nor predictions')}",
        ]
        return " · ".join(parts)


@dataclass(frozen=True)
class CollectionMap:
    """A t-SNE map of a collection: point i is video i, of class `classes[codes[i]]`."""

    points: np.ndarray
    codes: np.ndarray
    classes: list[str]
    hover: list[str]
    """File name and prediction of each video."""
    separability: Separability | None
    """Of the features by true label; None without true labels or with too few videos or classes to measure."""


def _folder(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CollectionError(f"{folder} does not exist")
    if not folder.is_dir():
        raise CollectionError(f"{folder} is a file: give the folder that `python -m analysis batch` wrote (--out)")
    if not (folder / "manifest.json").is_file():
        raise CollectionError(
            f"{folder} is not a batch output folder (no manifest.json): write one with "
            f"`python -m analysis batch VIDEOS --out {folder} --what predictions,features`"
        )
    return folder


def output_state(path: str | Path) -> tuple[str, int, tuple[int, ...]]:
    """(folder, manifest time, finished shards): changes whenever the folder's results do, so it keys a cache.

    A directory listing, not a read: cheap enough for every rerun of a page.
    """
    folder = _folder(path).resolve()
    return str(folder), (folder / "manifest.json").stat().st_mtime_ns, tuple(sorted(finished_shards(folder)))


def load_collection(path: str | Path, max_points: int = MAX_POINTS, seed: int = 0) -> Collection:
    """The analysed videos of a batch output folder with their features, at most `max_points` of them (a seeded
    random subsample, in input order)."""
    folder = _folder(path)
    try:
        manifest = read_manifest(folder)
    except BatchError as error:
        raise CollectionError(str(error)) from None
    if "features" not in manifest["what"]:
        raise CollectionError(
            f"{folder} was written without features (--what {','.join(manifest['what'])}): "
            "run the batch again into a new folder with --what predictions,features"
        )
    try:
        output = load_output(folder)
    except (OSError, ValueError) as error:  # a shard damaged after it was written
        raise CollectionError(f"{folder} holds an unreadable shard: {error}") from None
    analysed, errors = len(output.results), len(output.errors)
    pending = len(manifest["videos"]) - analysed - errors
    if analysed < TSNE_MIN_POINTS:
        raise CollectionError(
            f"t-SNE needs at least {TSNE_MIN_POINTS} analysed videos; {folder} has {analysed} "
            f"({errors} could not be read, {pending} not finished yet)"
        )
    features = output.features()
    if not np.isfinite(features).all():
        raise CollectionError(f"the features in {folder} contain NaN or infinite values: the model is broken")
    keep = np.arange(analysed)
    if analysed > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(analysed, max_points, replace=False))
    videos = output.results.iloc[keep].reindex(columns=["path", "label", "prediction"]).reset_index(drop=True)
    videos = videos.astype(object).where(videos.notna(), None)
    return Collection(
        features[keep],
        videos,
        analysed,
        errors,
        pending,
        str(manifest["checkpoint"]),
        manifest["checkpoint_sha256"],
        seed,
    )


def embed_collection(collection: Collection, perplexity: float = 30.0, seed: int = 0) -> CollectionMap:
    """t-SNE map of the collection, coloured by `collection.colour_column`, with separability by true label."""
    videos, column = collection.videos, collection.colour_column
    codes, classes = (np.zeros(len(videos), np.int64), ["video"]) if column is None else _codes(videos[column])
    measured = None
    if column == "label":
        try:
            measured = separability(collection.features, codes)
        except ValueError:  # one class only, or fewer videos than the kNN vote needs: nothing to measure
            pass
    hover = [
        escape(Path(path).name) + ("" if prediction is None else f"<br>predicted {escape(prediction)}")
        for path, prediction in zip(videos["path"], videos["prediction"])
    ]
    return CollectionMap(tsne(collection.features, perplexity, seed=seed), codes, classes, hover, measured)


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    classes, codes = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    return codes, classes.tolist()


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
