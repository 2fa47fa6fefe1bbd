"""Batch analysis of a video collection: predictions, CLS features and rollout maps of every video, in shards.

`run_batch` lists the videos, cuts the list into shards of `shard_size` in a fixed order and writes each finished
shard (`batch_files` has the formats). Every video is analysed alone (a batch of one clip), so its numbers do not
depend on the engine, worker or batch that ran it: the `local` engine (this machine's cores) and the `ray` engine
(`ray_engine.py`, Ray actors on a cluster) run the same `VideoAnalyzer` and write the same files. A video that
cannot be read becomes a row of the errors table with the reason; the job goes on.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from timesformer.checkpoints import load_checkpoint
from timesformer.cost import check_memory
from timesformer.inference import Prediction, read_clip
from timesformer.runtime import inference_copy
from timesformer.video import Clip

from .batch_files import (
    MANIFEST_FORMAT,
    WHATS,
    BatchError,
    InputVideo,
    checkpoint_digest,
    finished_shards,
    list_videos,
    pin_manifest,
    remove_debris,
    write_shard,
)
from .rollout import rollout

ENGINES = ("local", "ray")
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class BatchJob:
    """What is computed for every video: the output folder's manifest pins it, so shards never mix models."""

    checkpoint: str
    what: tuple[str, ...] = ("predictions", "features")
    top_k: int = 5
    precision: str = "float32"
    """Of the forward pass (predictions, features); bfloat16 only where the CPU has it fast. Rollout stays fp32."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BatchError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        unknown = sorted(set(self.what) - set(WHATS))
        if unknown or not self.what:
            raise BatchError(
                f"--what takes a comma-separated subset of {', '.join(WHATS)}, got {','.join(self.what)!r}"
            )
        if self.top_k < 1:
            raise BatchError(f"top_k must be positive, got {self.top_k}")
        object.__setattr__(self, "what", tuple(w for w in WHATS if w in self.what))  # one spelling per choice


# --- the per-video function, shared by the engines ---


class VideoAnalyzer:
    """A model loaded once, applied to one video at a time.

    `check=True` opens each video in a child process first (`read_clip(untrusted=True)`), so a file that
    crashes a decoder becomes an error row instead of killing the worker; it costs about half a second of
    CPU per video (a Python start), often more than a small model's forward pass.
    """

    def __init__(self, job: BatchJob, check: bool = True) -> None:
        self.job = job
        self.check = check
        self.loaded = load_checkpoint(job.checkpoint)
        self.loaded.model.eval()
        check_memory(self.loaded.config, capture="rollout" in job.what)
        self.model = self.loaded.model
        if job.precision != "float32":
            self.model = inference_copy(self.model, PRECISIONS[job.precision])

    def read(self, video: InputVideo) -> Clip:
        """The centre clip, sampled and normalised as the model expects."""
        return read_clip(video.path, self.loaded, untrusted=self.check)

    def forward(self, clip: Clip) -> dict:
        """Top-k predictions and the CLS feature of one clip."""
        with torch.inference_mode():
            feature = self.model.forward_features(clip.tensor.to(next(self.model.parameters()).dtype))
            probabilities = self.model.head(feature).float().softmax(-1)[0]
        top = Prediction(probabilities, self.loaded.labels).top(self.job.top_k)
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

    def row(self, video: InputVideo, clip: Clip | Exception) -> dict:
        """The row of one video, or of its error."""
        row = {"index": video.index, "path": video.path, "label": video.label}
        if isinstance(clip, Exception):
            return {**row, "error": type(clip).__name__, "reason": str(clip)}
        info = clip.info
        row |= {
            "num_frames": info.num_frames,
            "fps": info.fps,
            "width": info.width,
            "height": info.height,
            "duration_s": info.duration_s,
            "backend": info.backend,
            "frames": clip.indices,
        }
        if {"predictions", "features"} & set(self.job.what):
            row |= self.forward(clip)
        if "rollout" in self.job.what:
            row |= self.rollout(clip)
        return row

    def _read_or_error(self, video: InputVideo) -> Clip | Exception:
        try:
            return self.read(video)
        except Exception as error:  # noqa: BLE001 - whatever breaks on one file is that file's error row
            return error

    def analyze(self, videos: Iterable[InputVideo], readers: int = 1) -> Iterator[dict]:
        """Rows in input order; up to `readers` videos are decoded ahead by threads while the model runs."""
        for video, clip in _read_ahead(self._read_or_error, videos, readers):
            yield self.row(video, clip)


def _read_ahead(read: Callable[[InputVideo], Clip | Exception], videos: Iterable[InputVideo], depth: int):
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


def _manifest(job: BatchJob, shard_size: int, videos: list[InputVideo]) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "checkpoint_sha256": checkpoint_digest(job.checkpoint),
        "what": list(job.what),
        "top_k": job.top_k,
        "precision": job.precision,
        "shard_size": shard_size,
        "videos": [[v.path, v.label] for v in videos],
        "checkpoint": job.checkpoint,  # where it was: informative, not compared
    }


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
    job: BatchJob,
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
    job = replace(job, checkpoint=os.path.abspath(job.checkpoint))
    analyzer = VideoAnalyzer(job, check)  # for the ray engine too: a bad checkpoint fails before a job starts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another batch run is writing {out}") from None
        pin_manifest(out, _manifest(job, shard_size, videos))
        remove_debris(out)
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
                    write_shard(out, shard, buffers.pop(shard), job.what)
                    written += 1
                    if written == stop_after:
                        break
            rows.close()
    errors = sum(pq.read_metadata(p).num_rows for p in (out / "errors").glob("shard-*.parquet"))
    return BatchSummary(
        out, len(videos), len(shards), written, len(shards) - len(todo), errors, time.perf_counter() - start
    )


def _engine_rows(
    engine: str, analyzer: VideoAnalyzer, videos: list[InputVideo], address: str | None, readers: int | None
) -> Iterator[dict]:
    if engine == "local":
        return analyzer.analyze(videos, readers or os.cpu_count() or 1)
    try:
        from . import ray_engine
    except ImportError as error:
        raise BatchError(f"the ray engine needs Ray Data ({error}): pip install -r requirements-ray.txt") from None
    return ray_engine.analyze(videos, analyzer.job, analyzer.check, address=address, readers=readers or 1)


def summary_dict(summary: BatchSummary) -> dict:
    return {**asdict(summary), "out": str(summary.out), "seconds": round(summary.seconds, 1)}
