"""The ray engine of `analysis.batch`: the same per-video function, run by Ray Data on a cluster or here.

The video list becomes a Ray dataset; `map_batches` with a callable class gives each worker an actor that
loads the model once and then analyses the small batches of videos it is handed (`VideoAnalyzer`, as the
local engine). Rows stream back to the driver, which writes the shards. Videos and checkpoint are read by
path on the workers, so on a cluster they must be at the same paths on every node (shared storage); this
package is shipped to the cluster with the job, its dependencies must be installed there.

Only this module imports ray: the rest of the package works without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
import ray.data

import analysis
import timesformer

from .batch import BatchJob, VideoAnalyzer
from .batch_files import BatchError, InputVideo, rows_table

VIDEOS_PER_TASK = 4
"""Videos per actor call: small, so that work spreads evenly and rows stream back while the job runs."""


class _Worker:
    """A Ray Data actor: the model is loaded once per worker process."""

    def __init__(self, job: BatchJob, check: bool, readers: int) -> None:
        self.analyzer = VideoAnalyzer(job, check)
        self.readers = readers

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        videos = [InputVideo(int(i), str(p), str(label) or None)  # "" stands for no label, see `analyze`
                  for i, p, label in zip(batch["index"], batch["path"], batch["label"])]
        return rows_table(self.analyzer.analyze(videos, self.readers))


def connect(address: str | None) -> None:
    """Use the Ray already initialised in this process, else join `address` (shipping this code to the
    cluster), else start Ray on this machine."""
    if ray.is_initialized():
        return
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            modules = [str(Path(m.__file__).parent) for m in (timesformer, analysis)]
            ray.init(address=address, runtime_env={"py_modules": modules})
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise BatchError(f"cannot start or reach Ray at {address or 'this machine'}: {error}") from None


def analyze(
    videos: list[InputVideo],
    job: BatchJob,
    check: bool = True,
    address: str | None = None,
    readers: int = 1,
    workers: int | None = None,
) -> Iterator[dict]:
    """Rows of ROW_SCHEMA for `videos`, in the order they finish, from `workers` actors (default: one per
    CPU of the cluster)."""
    connect(address)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    items = [{"index": v.index, "path": v.path, "label": v.label or ""} for v in videos]  # no None: NaN in numpy
    dataset = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // VIDEOS_PER_TASK)))
    rows = dataset.map_batches(
        _Worker,
        fn_constructor_kwargs={"job": job, "check": check, "readers": readers},
        batch_size=VIDEOS_PER_TASK,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    for table in rows.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from table.to_pylist()
