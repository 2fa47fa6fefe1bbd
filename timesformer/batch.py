"""Batch analysis of a video collection: predictions, CLS features and rollout maps of every video, in shards.

`run_batch` lists the videos (a folder, a glob or a CSV manifest), cuts the list into shards of `shard_size`
in a fixed order and writes each finished shard. Every video is analysed alone (a batch of one clip), so its
numbers do not depend on the engine, worker or batch that ran it: the `local` engine (this machine's cores)
and the `ray` engine (`ray_engine.py`, Ray Data on a cluster) run the same `VideoAnalyzer` and write the same
files. A video that cannot be read becomes a row of the errors table with the reason; the job goes on.

Resumable and idempotent: a shard is done when its results file exists. Every file is written under a
temporary name and renamed, the results file last, so a killed run leaves whole shards plus debris that the
next run deletes, and a rerun computes only the missing shards. `manifest.json` pins the videos and settings
of an output folder: a rerun with other ones is refused instead of mixed in.

Layout of the output folder:
    manifest.json                checkpoint, what, top_k, shard_size and the list of videos
    results/shard-00000.parquet  a row per analysed video: index, path, label, video facts, top-k, feature
    errors/shard-00000.parquet   a row per video that failed: index, path, label, error (type), reason
    rollout/shard-00000.npz      index [n], maps [n, T, rows, cols] float32, cls_share [n]
"""

from __future__ import annotations

import csv
import fcntl
import glob
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from analysis.rollout import rollout
from .checkpoints import load_checkpoint
from .cost import check_memory
from .inference import Prediction, read_clip
from .video import Clip

WHATS = ("predictions", "features", "rollout")
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".gif"})
ENGINES = ("local", "ray")
MANIFEST_FORMAT = "timesformer-batch/1"

ROW_SCHEMA = pa.schema([
    ("index", pa.int64()), ("path", pa.string()), ("label", pa.string()),
    ("error", pa.string()), ("reason", pa.string()),
    ("num_frames", pa.int64()), ("fps", pa.float64()), ("width", pa.int64()), ("height", pa.int64()),
    ("duration_s", pa.float64()), ("backend", pa.string()), ("frames", pa.list_(pa.int64())),
    ("prediction", pa.string()), ("top_labels", pa.list_(pa.string())), ("top_probs", pa.list_(pa.float32())),
    ("feature", pa.list_(pa.float32())),
    ("rollout", pa.list_(pa.float32())), ("rollout_shape", pa.list_(pa.int64())), ("cls_share", pa.float32()),
])
"""One analysed video as it travels from a worker to the writer (a dict per row, or an Arrow table)."""
VIDEO_COLUMNS = ("index", "path", "label", "num_frames", "fps", "width", "height", "duration_s", "backend", "frames")
ERROR_COLUMNS = ("index", "path", "label", "error", "reason")
RESULT_COLUMNS = {"predictions": ("prediction", "top_labels", "top_probs"), "features": ("feature",), "rollout": ()}
"""Columns of the results table each kind of output adds; rollout maps go to the .npz files instead."""


class BatchError(ValueError):
    """A batch job that cannot start: bad input list, settings, output folder or engine, said in words."""


@dataclass(frozen=True)
class Video:
    """One entry of the input list; `index` is its position, which fixes its shard."""

    index: int
    path: str
    label: str | None = None


@dataclass(frozen=True)
class Analysis:
    """What is computed for every video: the output folder's manifest pins it, so shards never mix models."""

    checkpoint: str
    what: tuple[str, ...] = ("predictions", "features")
    top_k: int = 5

    def __post_init__(self) -> None:
        unknown = sorted(set(self.what) - set(WHATS))
        if unknown or not self.what:
            raise BatchError(f"--what takes a comma-separated subset of {', '.join(WHATS)}, got {','.join(self.what)!r}")
        if self.top_k < 1:
            raise BatchError(f"top_k must be positive, got {self.top_k}")
        object.__setattr__(self, "what", tuple(w for w in WHATS if w in self.what))  # one spelling per choice


# --- the input list ---

def list_videos(source: str | Path) -> list[Video]:
    """The videos of a folder (recursive; a video in a subfolder is labelled with that subfolder, the usual
    class-per-folder layout), of a CSV manifest (column `path`, relative to the CSV, optional `label`), or of a
    glob pattern; in sorted order for folders and globs, in file order for a manifest."""
    text = str(source)
    root = Path(text)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        found = [(p, None if p.parent == root else p.parent.relative_to(root).as_posix()) for p in files]
    elif root.is_file() and root.suffix.lower() == ".csv":
        found = _read_manifest(root)
    elif root.is_file():
        found = [(root, None)]
    elif glob.has_magic(text):
        found = [(Path(p), None) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
    else:
        raise BatchError(f"{text} is neither a folder, a CSV manifest, a video file nor a glob pattern")
    if not found:
        raise BatchError(f"no videos found in {text}")
    return [Video(i, os.path.abspath(path), label) for i, (path, label) in enumerate(found)]


def _read_manifest(path: Path) -> list[tuple[Path, str | None]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if "path" not in (reader.fieldnames or []):
            raise BatchError(f"{path.name} has no `path` column (its columns: {', '.join(reader.fieldnames or [])})")
        return [(path.parent / row["path"], row.get("label") or None) for row in reader if row["path"]]


# --- the per-video function, shared by the engines ---

class VideoAnalyzer:
    """A model loaded once, applied to one video at a time.

    `check=True` opens each video in a child process first (`read_clip(untrusted=True)`), so a file that
    crashes a decoder becomes an error row instead of killing the worker; it costs about half a second of
    CPU per video (a Python start), often more than a small model's forward pass.
    """

    def __init__(self, analysis: Analysis, check: bool = True) -> None:
        self.analysis = analysis
        self.check = check
        self.loaded = load_checkpoint(analysis.checkpoint)
        self.loaded.model.eval()
        check_memory(self.loaded.config, capture="rollout" in analysis.what)

    def read(self, video: Video) -> Clip:
        """The centre clip, sampled and normalised as the model expects."""
        return read_clip(video.path, self.loaded, untrusted=self.check)

    def forward(self, clip: Clip) -> dict:
        """Top-k predictions and the CLS feature of one clip."""
        with torch.inference_mode():
            feature = self.loaded.model.forward_features(clip.tensor)
            probabilities = self.loaded.model.head(feature).float().softmax(-1)[0]
        top = Prediction(probabilities, self.loaded.labels).top(self.analysis.top_k)
        return {
            "prediction": top[0][0],
            "top_labels": [label for label, _ in top],
            "top_probs": np.array([p for _, p in top], np.float32),
            "feature": feature[0].float().numpy(),
        }

    def rollout(self, clip: Clip) -> dict:
        """Attention rollout maps [T, rows, cols] of one clip, flattened for transport, and the CLS share."""
        result = rollout(self.loaded.model, clip.tensor)
        maps = result.maps[0].numpy()
        return {"rollout": maps.reshape(-1), "rollout_shape": list(maps.shape), "cls_share": float(result.cls_share[0])}

    def row(self, video: Video, clip: Clip | Exception) -> dict:
        """The row of one video, or of its error."""
        row = {"index": video.index, "path": video.path, "label": video.label}
        if isinstance(clip, Exception):
            return {**row, "error": type(clip).__name__, "reason": str(clip)}
        info = clip.info
        row |= {"num_frames": info.num_frames, "fps": info.fps, "width": info.width, "height": info.height,
                "duration_s": info.duration_s, "backend": info.backend, "frames": clip.indices}
        if {"predictions", "features"} & set(self.analysis.what):
            row |= self.forward(clip)
        if "rollout" in self.analysis.what:
            row |= self.rollout(clip)
        return row

    def _read_or_error(self, video: Video) -> Clip | Exception:
        try:
            return self.read(video)
        except Exception as error:  # noqa: BLE001 - whatever breaks on one file is that file's error row
            return error

    def analyze(self, videos: Iterable[Video], readers: int = 1) -> Iterator[dict]:
        """Rows in input order; up to `readers` videos are decoded ahead by threads while the model runs."""
        for video, clip in _read_ahead(self._read_or_error, videos, readers):
            yield self.row(video, clip)


def _read_ahead(read: Callable[[Video], Clip | Exception], videos: Iterable[Video], depth: int):
    """(video, read(video)) in order, with at most `depth` reads running or waiting to be consumed."""
    with ThreadPoolExecutor(max(1, depth)) as pool:
        pending: deque = deque()
        for video in videos:
            pending.append((video, pool.submit(read, video)))
            if len(pending) > depth:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def rows_table(rows: Iterable[dict]) -> pa.Table:
    """Rows as one Arrow table of ROW_SCHEMA (what the ray workers send back)."""
    return pa.Table.from_pylist(list(rows), schema=ROW_SCHEMA)


# --- the output folder ---

def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a hidden temporary file beside `path`, then rename: readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    write(partial)
    os.replace(partial, path)


def write_shard(out: Path, shard: int, rows: list[dict], what: tuple[str, ...]) -> None:
    """Errors and rollout maps first, the results file last: its existence means the shard is done."""
    name = shard_name(shard)
    table = rows_table(sorted(rows, key=lambda row: row["index"]))
    failed = pc.is_valid(table["error"])
    good, bad = table.filter(pc.invert(failed)), table.filter(failed)
    if bad.num_rows:
        _write_atomically(out / "errors" / f"{name}.parquet", lambda p: pq.write_table(bad.select(ERROR_COLUMNS), p))
    if "rollout" in what and good.num_rows:
        shapes = good["rollout_shape"].to_pylist()
        maps = np.stack([np.asarray(flat, np.float32).reshape(shape)
                         for flat, shape in zip(good["rollout"].to_pylist(), shapes)])

        def save(path: Path) -> None:
            with path.open("wb") as handle:
                np.savez_compressed(handle, index=good["index"].to_numpy(), maps=maps,
                                    cls_share=good["cls_share"].to_numpy().astype(np.float32))

        _write_atomically(out / "rollout" / f"{name}.npz", save)
    columns = VIDEO_COLUMNS + tuple(c for kind in what for c in RESULT_COLUMNS[kind])
    _write_atomically(out / "results" / f"{name}.parquet", lambda p: pq.write_table(good.select(columns), p))


def finished_shards(out: Path) -> set[int]:
    return {int(p.stem.removeprefix("shard-")) for p in (out / "results").glob("shard-*.parquet")}


def _remove_debris(out: Path) -> None:
    """Temporary files and the errors/rollout files of unfinished shards, left by a run that was killed."""
    done = {shard_name(s) for s in finished_shards(out)}
    for folder in ("results", "errors", "rollout"):
        for path in (out / folder).glob(".*.tmp"):
            path.unlink()
        for path in (out / folder).glob("shard-*"):
            if path.name.split(".")[0] not in done:
                path.unlink()


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 of a checkpoint file, or of the files of a checkpoint folder: a retrained model at the same path
    is another model."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _manifest(analysis: Analysis, shard_size: int, videos: list[Video]) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "checkpoint_sha256": checkpoint_digest(analysis.checkpoint),
        "what": list(analysis.what),
        "top_k": analysis.top_k,
        "shard_size": shard_size,
        "videos": [[v.path, v.label] for v in videos],
        "checkpoint": analysis.checkpoint,  # where it was: informative, not compared
    }


def _pin_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest of a new output folder, or refuse a folder whose manifest says otherwise."""
    path = out / "manifest.json"
    if path.exists():
        stored = json.loads(path.read_text())
        changed = [k for k in manifest if k != "checkpoint" and stored.get(k) != manifest[k]]
        if changed:
            raise BatchError(f"{out} holds the output of a run with other {', '.join(changed)}: rerun with the same "
                             "input and settings to resume it, or choose another --out")
        return
    _write_atomically(path, lambda p: p.write_text(json.dumps(manifest, indent=1)))


@dataclass
class BatchSummary:
    out: Path
    videos: int
    shards: int
    written: int
    """Shards this run wrote."""
    skipped: int
    """Shards found finished by an earlier run."""
    errors: int
    """Videos in the errors table of the whole output folder."""
    seconds: float


def run_batch(
    source: str | Path,
    out: str | Path,
    analysis: Analysis,
    *,
    engine: str = "local",
    shard_size: int = 64,
    check: bool = True,
    address: str | None = None,
    readers: int | None = None,
    stop_after: int | None = None,
    progress: bool = False,
) -> BatchSummary:
    """Analyse every video of `source` into `out`, skipping shards an earlier run finished.

    `readers`: videos decoded ahead per worker (default: this machine's cores for local, 1 per ray worker);
    `address`: the Ray cluster (default: start Ray on this machine, or use the Ray already initialised);
    `stop_after`: stop once this many shards are written (to process a collection in slices).
    """
    start = time.perf_counter()
    if engine not in ENGINES:
        raise BatchError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if shard_size < 1:
        raise BatchError(f"shard_size must be positive, got {shard_size}")
    videos = list_videos(source)
    analysis = replace(analysis, checkpoint=os.path.abspath(analysis.checkpoint))
    analyzer = VideoAnalyzer(analysis, check)  # for the ray engine too: a bad checkpoint fails before a job starts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another batch run is writing {out}") from None
        _pin_manifest(out, _manifest(analysis, shard_size, videos))
        _remove_debris(out)
        shards = [videos[i : i + shard_size] for i in range(0, len(videos), shard_size)]
        done = finished_shards(out)
        todo = {s: len(shard) for s, shard in enumerate(shards) if s not in done}
        pending = [video for s in todo for video in shards[s]]
        written = 0
        if pending:
            rows = _engine_rows(engine, analyzer, pending, address, readers)
            buffers: dict[int, list[dict]] = {}
            for row in tqdm(rows, total=len(pending), unit="video", disable=not progress):
                shard = row["index"] // shard_size
                buffers.setdefault(shard, []).append(row)
                if len(buffers[shard]) == todo[shard]:
                    write_shard(out, shard, buffers.pop(shard), analysis.what)
                    written += 1
                    if written == stop_after:
                        break
            rows.close()
    errors = sum(pq.read_metadata(p).num_rows for p in (out / "errors").glob("shard-*.parquet"))
    return BatchSummary(out, len(videos), len(shards), written, len(shards) - len(todo), errors,
                        time.perf_counter() - start)


def _engine_rows(engine: str, analyzer: VideoAnalyzer, videos: list[Video], address: str | None,
                 readers: int | None) -> Iterator[dict]:
    if engine == "local":
        return analyzer.analyze(videos, readers or os.cpu_count() or 1)
    try:
        from . import ray_engine
    except ImportError as error:
        raise BatchError(f"the ray engine needs Ray Data ({error}): pip install -r requirements-ray.txt") from None
    return ray_engine.analyze(videos, analyzer.analysis, analyzer.check, address=address, readers=readers or 1)


# --- reading an output folder ---

@dataclass
class BatchOutput:
    """The finished shards of an output folder, rows sorted by input index."""

    results: pd.DataFrame
    errors: pd.DataFrame
    rollout: dict[str, np.ndarray] = field(default_factory=dict)
    """`index` [n], `maps` [n, T, rows, cols], `cls_share` [n]; empty unless rollout was asked for."""

    def features(self) -> np.ndarray:
        """CLS features [n, D] of the analysed videos, in the order of `results`."""
        if "feature" not in self.results:
            raise BatchError("this output has no features: run the batch with --what including features")
        return np.stack(self.results["feature"].to_numpy()).astype(np.float32)


def load_output(out: str | Path) -> BatchOutput:
    """Read an output folder (finished shards only, so it can be read while a run is going on)."""
    out = Path(out)
    if not (out / "manifest.json").exists():
        raise BatchError(f"{out} is not a batch output folder (no manifest.json)")
    done = [shard_name(s) for s in sorted(finished_shards(out))]

    def tables(folder: str, suffix: str) -> list[Path]:
        return [p for name in done if (p := out / folder / f"{name}{suffix}").exists()]

    def frame(paths: list[Path], columns: tuple[str, ...]) -> pd.DataFrame:
        if not paths:
            return pd.DataFrame(columns=list(columns))
        return pa.concat_tables([pq.read_table(p) for p in paths]).to_pandas().sort_values("index", ignore_index=True)

    results = frame(tables("results", ".parquet"), VIDEO_COLUMNS)
    errors = frame(tables("errors", ".parquet"), ERROR_COLUMNS)
    parts = []
    for path in tables("rollout", ".npz"):
        with np.load(path) as stored:
            parts.append({key: stored[key] for key in stored.files})
    maps = {key: np.concatenate([part[key] for part in parts]) for key in ("index", "maps", "cls_share")} if parts else {}
    return BatchOutput(results, errors, maps)


def summary_dict(summary: BatchSummary) -> dict:
    return {**asdict(summary), "out": str(summary.out), "seconds": round(summary.seconds, 1)}
