"""The small-scale reproduction's training runs: one budget for every cell, several seeds, results kept on disk.

The budget is the demo models' recipe shrunk to minutes (`BUDGET`): tiny TimeSformers on 32 px crops, every clip
through a video file's path (`--augment video`), every video model inflated from one image model and started
on the previous frame wherever its scheme compares frames, `motion` cut to one twin pair (which that start
learns within a few epochs) and `appearance` to five shapes, so that the schemes separate within a CPU budget.
A cell trains each seed and is measured on held-out mp4 files read as `predict` reads them
(`analysis.video_eval`).

Every finished run is written to `work/runs/<key>.json` (its config is the key), so a stopped rerun resumes
where it stopped and a run shared by several tables trains once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from timesformer.checkpoints import read_metadata
from timesformer.schemes import SCHEMES
from timesformer.train import save_trained, train
from timesformer.train_config import TrainConfig
from timesformer.train_data import GENERATOR, make_splits
from timesformer.video import OFFICIAL_NORMALIZATION, load_clip

from .baselines import tiny_i3d
from .video_eval import ClipFiles, ClipReader, measure

log = logging.getLogger(__name__)

CLASSES = {"motion": "move_right,move_left", "appearance": "circle,square,triangle,star,cross"}
"""The classes of the reproduction. On `motion` one twin pair, so accuracy is the direction alone: with both
move pairs a tiny divided model told each movement from its reversal (99.5% twin accuracy) but mixed sideways
with up/down (55.5% accuracy after 6 epochs). On `appearance` the five plain silhouettes (at 32 px the textured
and holed ones were the slowest to learn: a tiny divided model reached 37.7% held-out on all ten)."""
BUDGET = TrainConfig(
    preset="tiny",
    augment="video",
    temporal_init="previous_frame",
    train_size=4000,
    val_size=200,
    epochs=7,
    batch_size=16,
    lr=1e-3,
    warmup_epochs=0.3,
    threads=1,
)
"""Every training cell (a few minutes on one core)."""
PRETRAIN = replace(
    BUDGET,
    dataset="images",
    scheme="space_only",
    temporal_init="paper",
    train_size=60000,
    val_size=500,
    epochs=20,
    batch_size=32,
    warmup_epochs=0.2,
)
"""The image model every video model starts from: single frames cost an eighth of a clip, so it gets many images
and epochs. On 20,000 images it overfits (15 epochs: 30.8% on the twelve shapes; 40 epochs: 41.0%, 78% on its
training images); on 60,000 it reaches 58.4%. A tiny L+G model on `appearance` (seed 0) reached 44.5%, 49.5%
and 72.5% started from these three."""
SMOKE = TrainConfig(preset="tiny", augment="video", train_size=8, val_size=4, epochs=1, batch_size=4, threads=1)
SMOKE_PRETRAIN = replace(SMOKE, dataset="images", scheme="space_only")
SEEDS = (0, 1, 2)
HELDOUT_CLIPS = 200
HELDOUT_SEED = 778
"""Held-out files of the reproduction: a seed no run trains or validates on (those use 0-3)."""


def start_for(scheme: str, config: TrainConfig) -> str:
    """The previous-frame start where the scheme and position embedding allow it (temporal_init.py), else the
    paper's: the same rule for every cell."""
    blind = SCHEMES[scheme].per_frame or config.pos_embed != "space_time"
    return "paper" if blind else config.temporal_init


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


RUN_SECONDS = {
    "space_only": 120,
    "joint_space_time": 135,
    "divided_space_time": 195,
    "sparse_local_global": 170,
    "axial": 270,
    "tiny_i3d": 60,
}
"""Training seconds of a run on `BUDGET` (measured on one thread, 2026-12-04), to start the longest runs first."""


def expected_seconds(config: TrainConfig, baseline: str = "") -> float:
    """About how long a run takes, for ordering: its model's measured time, scaled by its clips and epochs."""
    clips = config.train_size * config.epochs
    return RUN_SECONDS[baseline or config.scheme] * clips / (BUDGET.train_size * BUDGET.epochs)


BASELINES: dict[str, Callable[[int], nn.Module]] = {"tiny_i3d": tiny_i3d}
"""Models other than the config's TimeSformer that a cell can train on the same clips and budget."""


@dataclass
class Runner:
    """Trains cells on one budget; each run once, kept in `work_dir` so that a rerun resumes."""

    budget: TrainConfig
    pretrain: TrainConfig
    seeds: tuple[int, ...]
    work_dir: Path
    on_run: Callable[[str], None] | None = None
    """Called with a run's name before it trains."""

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        (self.work_dir / "runs").mkdir(parents=True, exist_ok=True)

    def config(self, **overrides) -> TrainConfig:
        """The budget with `overrides`, its classes and start set by the reproduction's rules."""
        config = replace(self.budget, **overrides)
        classes = config.classes or CLASSES.get(config.dataset, "")
        config = replace(config, classes=classes, temporal_init=start_for(config.scheme, config))
        return replace(config, init=str(self.image_model_path)) if config.init == "image" else config

    def heldout(self, config: TrainConfig) -> ClipFiles:
        model = config.model_config()
        return ClipFiles(
            config.dataset,
            HELDOUT_CLIPS if self.budget.train_size > 100 else 8,
            HELDOUT_SEED,
            round(model.image_size * 1.875),
            16,
            config.class_subset,
        )

    def reader(self, config: TrainConfig) -> ClipReader:
        """How every model of the reproduction reads a file: uniform segments, short side 256/224, centre crop."""
        model = config.model_config()
        mean, std = OFFICIAL_NORMALIZATION
        return lambda path: load_clip(path, model.num_frames, 1, model.image_size, 1, mean, std, mode="uniform").tensor

    def result_path(self, config: TrainConfig, baseline: str = "") -> Path:
        """Where the run of `config` (or of the baseline on its clips) is kept once it has trained; a changed
        generator trains it again."""
        return self.work_dir / "runs" / f"{_key([config.to_dict(), baseline, GENERATOR])}.json"

    def run(self, config: TrainConfig, baseline: str = "") -> dict:
        """One training run's metrics through video files, parameters, time and per-epoch history."""
        path = self.result_path(config, baseline)
        if path.exists():
            return json.loads(path.read_text())
        if self.on_run is not None:
            self.on_run(f"{config.dataset} {baseline or config.scheme} seed {config.seed}")
        if config.init == str(self.image_model_path):
            self.image_model()
        torch.manual_seed(config.seed)
        model = BASELINES[baseline](len(make_splits(config).train.class_names)) if baseline else None
        result = train(config, model=model, progress=False)
        found = {
            **measure(result.model, self.heldout(config), self.work_dir / "heldout", self.reader(config)),
            "train_seconds": result.seconds,
            "params": sum(p.numel() for p in result.model.parameters()),
            "history": [
                {"epoch": e.epoch, "val_accuracy": e.val_accuracy, "seconds": e.seconds} for e in result.history
            ],
        }
        path.write_text(json.dumps(found))
        log.info(
            "%s %s seed %d: accuracy %.3f", config.dataset, baseline or config.scheme, config.seed, found["accuracy"]
        )
        return found

    def cell(self, baseline: str = "", **overrides) -> dict:
        """Every seed of one cell: per-seed metrics and their mean and std."""
        per_seed = [{"seed": seed, **self.run(self.config(seed=seed, **overrides), baseline)} for seed in self.seeds]
        metrics = [k for k in ("accuracy", "twin_accuracy", "train_seconds") if k in per_seed[0]]
        return {"per_seed": per_seed, **{k: spread([run[k] for run in per_seed]) for k in metrics}}

    @property
    def image_model_path(self) -> Path:
        """Where the image model (the `pretrain` budget) is kept; its name holds the budget's and the generator's
        key, so a changed budget or generator trains a new one."""
        return self.work_dir / f"image_model-{_key([self.pretrain.to_dict(), GENERATOR])}.safetensors"

    def image_model(self) -> str:
        """Path of the image model, trained first if it is not kept yet."""
        path = self.image_model_path
        if not path.exists():
            if self.on_run is not None:
                self.on_run("images space_only (the image model)")
            result = train(self.pretrain, progress=False)
            save_trained(result, self.pretrain, path, self.pretrain.command(out=str(path)))
        return str(path)

    def image_model_record(self) -> dict:
        """The image model's validation accuracy, epochs and training time, from its file's metadata."""
        metadata = read_metadata(self.image_model())
        return {
            "val_accuracy": float(metadata["val_accuracy"]),
            "epochs": int(metadata["epochs"]),
            "train_seconds": float(metadata["train_seconds"]),
        }


def _key(payload: object) -> str:
    """A short stable name for a JSON-able payload (a config): the same payload, the same name."""
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]
