"""Shared test settings (deterministic, small, quiet) and helpers that several test modules use."""

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from analysis.batch import BatchJob, run_batch
from timesformer.datasets import generate, write_mp4

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _write_batch_output(
    root: Path,
    checkpoint: Path,
    good: int,
    labels: Sequence[str] = (),
    broken: int = 0,
    what: tuple[str, ...] = ("predictions", "features"),
    **run,
) -> Path:
    """`root`/out: what `python -m analysis batch` writes for `good` generated clips (labelled in turn by
    `labels` in a CSV manifest, if any) and `broken` unreadable files; `run` goes to `run_batch`."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, frames in enumerate(generate("motion", good, seed=0, num_frames=8, size=32).frames):
        write_mp4(frames, root / f"clip{i:02d}.mp4")
        rows.append(f"clip{i:02d}.mp4,{labels[i % len(labels)] if labels else ''}")
    for i in range(broken):
        (root / f"broken{i}.mp4").write_text("this is not a video")
        rows.append(f"broken{i}.mp4,")
    (root / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    run_batch(
        root / "list.csv",
        root / "out",
        BatchJob(str(checkpoint), what),
        check=False,
        readers=1,
        **{"shard_size": 4} | run,
    )
    return root / "out"


@pytest.fixture(scope="session")
def write_batch_output():
    """The batch output writer above, for tests that need a batch output folder."""
    return _write_batch_output
