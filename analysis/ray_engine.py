"""The ray engine of `analysis.batch`: the same per-video function, run by a pool of Ray actors.

Each actor loads the model once (`VideoAnalyzer`, as the local engine) and is handed chunks of videos; every
actor has two chunks queued, so it never waits for the driver between calls, and rows stream back to the
driver, which writes the shards. Chunks are large enough that a call's overhead (milliseconds) and the drained
read-ahead at a chunk's end are small beside its videos, and small enough that every actor gets several (the
last ones even out). Plain actors, not Ray Data: its executor costs more CPU than it saves at this scale.
Videos and checkpoint are read by path on the workers, so on a cluster they must be at the same paths on every
node (shared storage); this package is shipped to the cluster with the job, its dependencies must be installed.

Only this module imports ray: the rest of the package works without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ray
import torch

import analysis
import timesformer

from .batch import BatchJob, VideoAnalyzer
from .batch_files import BatchError, InputVideo

MAX_VIDEOS_PER_CALL = 32
CALLS_PER_WORKER = 4
"""A job is cut into at least this many chunks per worker, so that the workers finish close together."""
QUEUED_PER_WORKER = 2


@ray.remote
class _Worker:
    """A Ray actor: the model is loaded once per worker process; torch uses the actor's CPUs."""

    def __init__(self, job: BatchJob, check: bool, readers: int, threads: int) -> None:
        torch.set_num_threads(threads)
        self.analyzer = VideoAnalyzer(job, check)
        self.readers = readers

    def analyze(self, videos: list[InputVideo]) -> list[dict]:
        return list(self.analyzer.analyze(videos, self.readers))


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
    threads: int = 1,
) -> Iterator[dict]:
    """Rows of ROW_SCHEMA for `videos`, in the order they finish, from `workers` actors of `threads` CPUs each
    (default: as many as the cluster's CPUs allow)."""
    connect(address)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    size = max(1, min(MAX_VIDEOS_PER_CALL, len(videos) // (workers * CALLS_PER_WORKER)))
    chunks = [videos[i : i + size] for i in range(0, len(videos), size)][::-1]  # popped from the end: input order
    pool = [
        _Worker.options(num_cpus=threads).remote(job, check, readers, threads) for _ in range(min(workers, len(chunks)))
    ]
    running = {}
    for actor in pool:
        for _ in range(QUEUED_PER_WORKER):
            if chunks:
                running[actor.analyze.remote(chunks.pop())] = actor
    try:
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(done)
            if chunks:
                running[actor.analyze.remote(chunks.pop())] = actor
            yield from ray.get(done)
    finally:
        for actor in pool:
            ray.kill(actor)
