"""The files of a batch analysis: the list of videos it reads, and the output folder it writes in shards.

Input: a folder (recursive; a video in a subfolder is labelled with that subfolder), a glob pattern, or a CSV
manifest with a `path` column (relative to the CSV) and an optional `label` column, in UTF-8 (with or without
Excel's byte-order mark) or UTF-16.

Output folder (resumable and idempotent: a shard is done when its results file exists; every file is written
under a temporary name and renamed, the results file last; `manifest.json` pins the videos and settings, so a
rerun with other ones is refused instead of mixed in):
    manifest.json                checkpoint, what, top_k, precision, shard_size and the list of videos
    results/shard-00000.parquet  a row per analysed video: index, path, label, video facts, top-k, feature
    errors/shard-00000.parquet   a row per video that failed: index, path, label, error (type), reason
    rollout/shard-00000.npz      index [n], maps [n, T, rows, cols] float32, cls_share [n]
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

WHATS = ("predictions", "features", "rollout")
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".gif"})
MANIFEST_FORMAT = "timesformer-batch/1"

ROW_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("path", pa.string()),
        ("label", pa.string()),
        ("error", pa.string()),
        ("reason", pa.string()),
        ("num_frames", pa.int64()),
        ("fps", pa.float64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("duration_s", pa.float64()),
        ("backend", pa.string()),
        ("frames", pa.list_(pa.int64())),
        ("prediction", pa.string()),
        ("top_labels", pa.list_(pa.string())),
        ("top_probs", pa.list_(pa.float32())),
        ("feature", pa.list_(pa.float32())),
        ("rollout", pa.list_(pa.float32())),
        ("rollout_shape", pa.list_(pa.int64())),
        ("cls_share", pa.float32()),
    ]
)
"""One analysed video as it travels from a worker to the writer (a dict per row, or an Arrow table)."""
VIDEO_COLUMNS = ("index", "path", "label", "num_frames", "fps", "width", "height", "duration_s", "backend", "frames")
ERROR_COLUMNS = ("index", "path", "label", "error", "reason")
RESULT_COLUMNS = {"predictions": ("prediction", "top_labels", "top_probs"), "features": ("feature",), "rollout": ()}
"""Columns of the results table each kind of output adds; rollout maps go to the .npz files instead."""


class BatchError(ValueError):
    """A batch job that cannot start: bad input list, settings, output folder or engine, said in words."""


@dataclass(frozen=True)
class InputVideo:
    """One entry of the input list; `index` is its position, which fixes its shard."""

    index: int
    path: str
    label: str | None = None


# --- the input list ---


def list_videos(source: str | Path) -> list[InputVideo]:
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
    return [InputVideo(i, os.path.abspath(path), label) for i, (path, label) in enumerate(found)]


def _read_manifest(path: Path) -> list[tuple[Path, str | None]]:
    reader = csv.DictReader(io.StringIO(_manifest_text(path), newline=""))
    try:
        fields = reader.fieldnames or []
        if "path" not in fields:
            raise BatchError(f"{path.name} has no `path` column (its columns: {', '.join(fields) or 'none'})")
        return [(path.parent / row["path"], row.get("label") or None) for row in reader if row.get("path")]
    except csv.Error as error:
        raise BatchError(f"{path.name} is not a readable CSV file ({error})") from None


def _manifest_text(path: Path) -> str:
    """The CSV's text: UTF-8 (Excel's "CSV UTF-8" starts with a byte-order mark) or UTF-16 with its mark."""
    data = path.read_bytes()
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise BatchError(
            f"{path.name} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x}, as in "
            "Latin-1): save it as CSV UTF-8"
        ) from None


def rows_table(rows: Iterable[dict]) -> pa.Table:
    """Rows as one Arrow table of ROW_SCHEMA."""
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
        maps = np.stack(
            [np.asarray(flat, np.float32).reshape(shape) for flat, shape in zip(good["rollout"].to_pylist(), shapes)]
        )

        def save(path: Path) -> None:
            with path.open("wb") as handle:
                np.savez_compressed(
                    handle,
                    index=good["index"].to_numpy(),
                    maps=maps,
                    cls_share=good["cls_share"].to_numpy().astype(np.float32),
                )

        _write_atomically(out / "rollout" / f"{name}.npz", save)
    columns = VIDEO_COLUMNS + tuple(c for kind in what for c in RESULT_COLUMNS[kind])
    _write_atomically(out / "results" / f"{name}.parquet", lambda p: pq.write_table(good.select(columns), p))


def finished_shards(out: Path) -> set[int]:
    return {int(p.stem.removeprefix("shard-")) for p in (out / "results").glob("shard-*.parquet")}


def remove_debris(out: Path) -> None:
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


def pin_manifest(out: Path, manifest: dict) -> None:
    """Write the manifest of a new output folder, or refuse a folder whose manifest says otherwise."""
    path = out / "manifest.json"
    if path.exists():
        stored = read_manifest(out)
        changed = [k for k in manifest if k != "checkpoint" and stored.get(k) != manifest[k]]
        if changed:
            raise BatchError(
                f"{out} holds the output of a run with other {', '.join(changed)}: rerun with the same "
                "input and settings to resume it, or choose another --out"
            )
        return
    _write_atomically(path, lambda p: p.write_text(json.dumps(manifest, indent=1)))


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


def read_manifest(out: Path) -> dict:
    """The manifest of an output folder; BatchError if it is missing or damaged."""
    path = out / "manifest.json"
    if not path.is_file():
        raise BatchError(f"{out} is not a batch output folder (no manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BatchError(f"{path} is damaged ({error}): delete the folder and run the batch again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BatchError(f"{path} is not a manifest of this program's batch output ({MANIFEST_FORMAT})")
    if not isinstance(manifest.get("what"), list) or not isinstance(manifest.get("videos"), list):
        raise BatchError(f"{path} is damaged (no list of outputs or of videos): delete the folder and run again")
    return manifest


def load_output(out: str | Path) -> BatchOutput:
    """Read an output folder (finished shards only, so it can be read while a run is going on)."""
    out = Path(out)
    read_manifest(out)
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
    maps = (
        {key: np.concatenate([part[key] for part in parts]) for key in ("index", "maps", "cls_share")} if parts else {}
    )
    return BatchOutput(results, errors, maps)
