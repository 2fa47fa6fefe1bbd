"""Train a TimeSformer on CPU on one of the generated datasets (`timesformer.datasets`), reproducibly.

One `TrainConfig` fixes a run completely: same config, same threads, same bits. Its fields are also the
command line of `python -m timesformer train` (one flag per field), so `TrainConfig.command()` is the exact
command that regenerates a model, and it is stored in the model's metadata.

- Data is generated once in memory (`generate` is deterministic from a seed); batches index into it.
  Validation clips come from `data_seed + 1`, a stream disjoint from the training clips; `focus` classes get
  `focus_size` more training clips from `data_seed + 2` (a pair that a balanced mix leaves unlearnt).
- `init` starts from one of our checkpoints: an image model is inflated (the paper's recipe), a model of this
  very architecture and label set is trained on (a second stage).
- The epoch's shuffle is drawn from (seed, epoch), so a resumed run sees the same batches.
- Optimiser: AdamW, or the paper's SGD (momentum 0.9, weight decay 1e-4, lr / 10 at 11/15 and 14/15 of
  training). The learning rate is set per step: linear warmup, then cosine to zero or the paper's steps.
- `state`: after every epoch, model + optimiser + scheduler + RNG + history are written with `torch.save` as
  plain tensors and containers (readable with `weights_only=True`); a run whose state file exists resumes.
- Several processes: `torchrun --nproc_per_node N -m timesformer train ...` trains with DDP (gloo, CPU). Each
  process takes its slice of every global batch (`batch_size` stays the global batch), so the run matches one
  process up to float rounding; only rank 0 logs and writes, and the state holds the unwrapped model, so a
  run resumes with any number of processes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import get_type_hints

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import augment, datasets, video
from .augment import VideoPath
from .checkpoints import (
    OFFICIAL_NORMALIZATION,
    LoadedModel,
    load_checkpoint,
    save_checkpoint,
)
from .datasets import DATASETS, VideoSet, cached, concatenate, generate, to_clip_tensor
from .inflate import InflationError, inflate
from .model import PRESETS, TimeSformer, TimeSformerConfig, preset
from .schemes import SCHEMES
from .temporal_init import TEMPORAL_INITS, TemporalInitError, start_from_previous_frame

log = logging.getLogger(__name__)

STEP_MILESTONES = (11 / 15, 14 / 15)
"""The paper's step schedule (lr / 10 after epochs 11 and 14 of 15), as fractions of the run."""
SGD_MOMENTUM = 0.9
SAMPLING_STRIDE = "1"
"""Generated clips are consecutive frames: stored so that inference samples real videos alike. Models trained
through the video path (`augment="video"`) took one frame of each of T equal segments instead, and say so
(`sampling`: "uniform")."""


class TrainError(ValueError):
    """A training run that cannot start or resume, with the reason in words."""


def _option(text: str, choices: tuple[str, ...] = ()) -> dict:
    return {"help": text, "choices": choices}


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result; each field is a flag of `python -m timesformer train`."""

    dataset: str = field(default="motion", metadata=_option("generated dataset", tuple(DATASETS)))
    scheme: str = field(default="divided_space_time", metadata=_option("attention scheme", tuple(SCHEMES)))
    preset: str = field(default="demo", metadata=_option("model size", tuple(PRESETS)))
    patch_size: int = field(default=0, metadata=_option("patch side in pixels; 0: the preset's"))
    pos_embed: str = field(default="space_time", metadata=_option("position embedding (Table 4)", ("space_time", "space", "none")))
    init: str = field(default="", metadata=_option(
        "our .safetensors to start from: an image model to inflate, or a model of this architecture to train on; "
        "empty: from scratch"))
    temporal_init: str = field(default="paper", metadata=_option(
        "temporal attention's start: the paper's, or head 0 on the previous frame (timesformer/temporal_init.py)",
        TEMPORAL_INITS))
    augment: str = field(default="none", metadata=_option(
        "none: clips as drawn; video: through a video file's path, randomised (timesformer/augment.py)",
        ("none", "video")))
    classes: str = field(default="", metadata=_option(
        "comma-separated classes to train and validate on (the head keeps every class); empty: all"))
    train_size: int = field(default=2000, metadata=_option("generated training clips"))
    val_size: int = field(default=300, metadata=_option("generated validation clips"))
    focus: str = field(default="", metadata=_option("comma-separated classes given focus_size extra training clips"))
    focus_size: int = field(default=0, metadata=_option("extra training clips of the focus classes (data_seed + 2)"))
    data_seed: int = field(default=0, metadata=_option("seed of the training clips; validation uses data_seed + 1, focus clips + 2"))
    seed: int = field(default=0, metadata=_option("seed of the weights and the shuffling"))
    epochs: int = field(default=10, metadata=_option("passes over the training clips"))
    batch_size: int = field(default=32, metadata=_option("clips per step"))
    optimizer: str = field(default="adamw", metadata=_option("adamw, or the paper's sgd (momentum 0.9)", ("adamw", "sgd")))
    lr: float = field(default=1e-3, metadata=_option("peak learning rate (paper, SGD: 0.005)"))
    weight_decay: float = field(default=0.05, metadata=_option("weight decay (paper, SGD: 1e-4)"))
    schedule: str = field(default="cosine", metadata=_option("after warmup: cosine to 0, or the paper's steps", ("cosine", "step")))
    warmup_epochs: float = field(default=1.0, metadata=_option("linear warmup length in epochs"))
    label_smoothing: float = field(default=0.0, metadata=_option("cross-entropy label smoothing"))
    drop_path: float = field(default=0.0, metadata=_option("stochastic depth rate of the last block"))
    threads: int = field(default=0, metadata=_option("torch threads; 0: all cores (shared by the processes torchrun starts here)"))

    def __post_init__(self) -> None:
        for f in fields(self):
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise TrainError(f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}")
        if min(self.train_size, self.val_size, self.epochs, self.batch_size) < 1:
            raise TrainError("train_size, val_size, epochs and batch_size must be positive")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or min(self.seed, self.data_seed) < 0:
            raise TrainError("lr must be positive; weight_decay, warmup_epochs and seeds non-negative")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.drop_path < 1:
            raise TrainError("label_smoothing and drop_path must be in [0, 1)")
        if self.patch_size < 0:
            raise TrainError("patch_size must be positive, or 0 for the preset's")
        if set(_names(self.classes)) - set(DATASETS[self.dataset].classes):
            raise TrainError(f"classes must be some of {self.dataset}'s ({', '.join(DATASETS[self.dataset].classes)}), "
                             f"got {self.classes!r}")
        unknown = set(self.focus_classes) - set(DATASETS[self.dataset].classes)
        if unknown or self.focus_size < 0 or bool(self.focus_classes) != bool(self.focus_size):
            raise TrainError(f"focus needs classes of {self.dataset} ({', '.join(DATASETS[self.dataset].classes)}) "
                             f"and a positive focus_size, or neither; got focus={self.focus!r}, "
                             f"focus_size={self.focus_size}")
        try:
            self.model_config()
        except ValueError as error:  # e.g. a patch that does not tile the frame
            raise TrainError(str(error)) from None

    @property
    def focus_classes(self) -> tuple[str, ...]:
        return _names(self.focus)

    @property
    def class_subset(self) -> tuple[str, ...] | None:
        """The classes the run sees, or None for all of them."""
        return _names(self.classes) or None

    def model_config(self) -> TimeSformerConfig:
        """The architecture: the preset with this dataset's classes and clip length (1 frame for images), and
        `patch_size` if set (a finer grid of tokens costs time but lets a small model see motion inside a patch)."""
        frames = 1 if self.dataset == "images" else PRESETS[self.preset].num_frames
        patch = self.patch_size or PRESETS[self.preset].patch_size
        return preset(self.preset, scheme=self.scheme, pos_embed=self.pos_embed, num_frames=frames, patch_size=patch,
                      num_classes=len(DATASETS[self.dataset].classes), drop_path=self.drop_path)

    def command(self, out: str = "", state: str = "") -> str:
        """The exact command line that runs this config (flags for the fields that differ from the default)."""
        args = ["python", "-m", "timesformer", "train"]
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                args += [f"--{f.name.replace('_', '-')}", str(value)]
        for flag, value in (("--out", out), ("--state", state)):
            if value:
                args += [flag, value]
        return shlex.join(args)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float
    lr: float
    seconds: float
    """Wall-clock time of the epoch's training steps (validation excluded)."""


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochLog]
    labels: list[str]

    @property
    def val_accuracy(self) -> float:
        return self.history[-1].val_accuracy

    @property
    def seconds(self) -> float:
        return sum(epoch.seconds for epoch in self.history)


@dataclass
class Splits:
    """Training and validation clips, generated once."""

    train: VideoSet
    val: VideoSet


_GENERATOR = hashlib.sha256(b"".join(Path(module.__file__).read_bytes() for module in (datasets, augment, video))
                            ).hexdigest()
"""The code that draws clips: cached clips drawn by other code are not reused."""


def make_splits(config: TrainConfig) -> Splits:
    """The run's training and validation clips, of every class or of `config.classes`.

    With `augment="video"` training clips take a video file's path with the paper's random scale and crop,
    validation clips the test path (`timesformer.augment`). TIMESFORMER_CLIP_CACHE names a folder where clips are
    kept between runs (runs of one recipe share them); results are the same with or without it."""
    model_config = config.model_config()
    frames, size = model_config.num_frames, model_config.image_size
    folder = os.environ.get("TIMESFORMER_CLIP_CACHE") or None
    train_path, val_path = (VideoPath(), VideoPath(train=False)) if config.augment == "video" else (None, None)

    def clips(n: int, seed: int, names: Sequence[str] | None, render: VideoPath | None) -> VideoSet:
        key = json.dumps([config.dataset, n, seed, frames, size, names and list(names), render and asdict(render),
                          _GENERATOR])
        return cached(hashlib.sha256(key.encode()).hexdigest()[:20],
                      lambda: generate(config.dataset, n, seed, frames, size, names, render), folder)

    classes = config.class_subset
    train = clips(config.train_size, config.data_seed, classes, train_path)
    if config.focus_size:
        train = concatenate(train, clips(config.focus_size, config.data_seed + 2, config.focus_classes, train_path))
    return Splits(train, clips(config.val_size, config.data_seed + 1, classes, val_path))


def build_model(config: TrainConfig) -> TimeSformer:
    """A fresh model seeded by `config.seed`, or the model at `config.init`: inflated if it is an image model,
    as it is if it has this architecture; then temporal attention started as `config.temporal_init` says."""
    torch.manual_seed(config.seed)
    model_config = config.model_config()
    if not config.init:
        model = TimeSformer(model_config)
    else:
        start = load_checkpoint(config.init)
        if _same_architecture(start.config, model_config):
            return _continued(start, config)
        try:
            model = inflate(start.model, model_config)
        except InflationError as error:
            raise TrainError(f"{config.init}: {error}") from None
    if config.temporal_init == "previous_frame":
        try:
            start_from_previous_frame(model)
        except TemporalInitError as error:
            raise TrainError(str(error)) from None
    return model


def _same_architecture(a: TimeSformerConfig, b: TimeSformerConfig) -> bool:
    """Equal but for the regularisers, which a later stage may change."""
    return replace(a, drop_path=b.drop_path, dropout=b.dropout) == b


def _continued(start: LoadedModel, config: TrainConfig) -> TimeSformer:
    """The trained weights of `start` in a model built from `config` (its own regularisers)."""
    classes = list(DATASETS[config.dataset].classes)
    if start.labels != classes:
        raise TrainError(f"{config.init} predicts {', '.join(start.labels)}, not the classes of {config.dataset}")
    if config.temporal_init != "paper":
        raise TrainError(f"{config.init} is trained already: its temporal attention needs no {config.temporal_init} "
                         "start (that is for inflating an image model)")
    model = TimeSformer(config.model_config())
    model.load_state_dict(start.model.state_dict())
    return model


def learning_rate_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the peak lr at a step: linear warmup, then cosine to zero or the paper's steps."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "step":
        return 0.1 ** sum(step >= m * total for m in STEP_MILESTONES)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Weight decay on matrices only, as in ViT: not on biases, norms, embeddings or CLS."""
    decay = [p for p in model.parameters() if p.ndim >= 2 and p.shape[0] > 1]
    rest = [p for p in model.parameters() if not (p.ndim >= 2 and p.shape[0] > 1)]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=SGD_MOMENTUM)
    return torch.optim.AdamW(groups, lr=config.lr)


def clips(videos: VideoSet, index: Tensor | slice) -> tuple[Tensor, Tensor]:
    """A batch: normalised clips [B, 3, T, H, W] and labels [B]."""
    index = index.numpy() if isinstance(index, Tensor) else index
    return to_clip_tensor(videos.frames[index], *OFFICIAL_NORMALIZATION), torch.from_numpy(videos.labels[index])


@torch.no_grad()
def predict_logits(model: nn.Module, videos: VideoSet, batch_size: int = 64) -> Tensor:
    """Logits [n, classes] of every clip, in eval mode (the model is put back in its mode after)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(clips(videos, slice(i, i + batch_size))[0]) for i in range(0, len(videos), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, videos: VideoSet, batch_size: int = 64) -> float:
    return (predict_logits(model, videos, batch_size).argmax(1).numpy() == videos.labels).mean().item()


def _check_state(state: dict, config: TrainConfig, path: Path) -> None:
    # a state written before a field existed ran with that field's default
    saved = {f.name: f.default for f in fields(TrainConfig)} | state["config"]
    if saved != config.to_dict():
        changed = [k for k, v in config.to_dict().items() if saved.get(k) != v]
        raise TrainError(f"{path} was written by a run with a different config ({', '.join(changed)}); "
                         "use another --state path or the same settings")


def _process_group() -> tuple[int, int]:
    """(rank, number of processes): torchrun's process group, joined on the first call (gloo, for CPUs), or
    (0, 1) for a plain single-process run."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def train(
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
    data: Splits | None = None,
    state: str | Path | None = None,
    progress: bool = True,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train and return the model with its per-epoch history.

    `model` replaces the TimeSformer the config describes (e.g. a 3D CNN baseline fed the same clips);
    `data` reuses clips already generated for this config; `state` is the resumable state file, written
    after every epoch and resumed from when it exists. `on_epoch` sees each epoch's log after the state is
    written (raising there interrupts the run at a resumable point).
    """
    rank, world = _process_group()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # the cores are shared by this machine's ranks
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // local_processes))
    torch.set_flush_denormal(True)
    torch.manual_seed(config.seed)
    model = build_model(config) if model is None else model
    data = make_splits(config) if data is None else data
    optimizer = _optimizer(config, model)
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    smallest_batch = min(config.batch_size, len(data.train) - (steps_per_epoch - 1) * config.batch_size)
    if smallest_batch < world:
        raise TrainError(f"a batch of {smallest_batch} clips cannot give each of {world} processes one: "
                         "use a larger batch_size, or a train_size that leaves a larger last batch")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(config, step, steps_per_epoch))
    history: list[EpochLog] = []
    path = Path(state) if state else None
    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        _check_state(saved, config, path)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        history = [EpochLog(**entry) for entry in saved["history"]]
        if rank == 0:
            log.info("resumed %s after epoch %d", path, len(history))
    net = DistributedDataParallel(model) if world > 1 else model  # `model` stays unwrapped, for states and checkpoints
    model.train()
    for epoch in range(len(history), config.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        loss_sum, correct = 0.0, 0
        batches = tqdm(order.split(config.batch_size), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not progress or rank > 0, leave=False)
        for index in batches:
            share = index.tensor_split(world)[rank]  # this process's slice of the global batch
            video, labels = clips(data.train, share)
            logits = net(video)
            loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages the processes' gradients; weighting each by its slice's size makes that the gradient of
            # the global batch's mean loss, also when the slices differ by one clip (the weight is 1.0 alone).
            (loss * (len(share) * world / len(index))).backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(share)
            correct += (logits.argmax(1) == labels).sum().item()
            batches.set_postfix(loss=f"{loss.item():.3f}")
        if world > 1:  # the epoch's loss and hits of all processes
            totals = torch.tensor([loss_sum, correct], dtype=torch.float64)
            dist.all_reduce(totals)
            loss_sum, correct = totals.tolist()
        seconds = time.perf_counter() - start
        entry = EpochLog(epoch + 1, loss_sum / len(data.train), correct / len(data.train),
                         accuracy(model, data.val), optimizer.param_groups[0]["lr"], seconds)
        history.append(entry)
        if rank == 0:
            log.info("epoch %d/%d  loss %.4f  train acc %.3f  val acc %.3f  lr %.2e  %.1f s", entry.epoch,
                     config.epochs, entry.loss, entry.train_accuracy, entry.val_accuracy, entry.lr, entry.seconds)
        if path is not None and rank == 0:
            _save_state(path, config, model, optimizer, scheduler, history)
        if on_epoch is not None:
            on_epoch(entry)
    return TrainResult(model.eval(), history, list(data.train.class_names))


def _save_state(path: Path, config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, history: list[EpochLog]) -> None:
    """Write atomically (a crash mid-write leaves the previous epoch's state intact)."""
    state = {
        "config": config.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "history": [asdict(entry) for entry in history],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(state, partial)
    partial.replace(path)


def save_trained(result: TrainResult, config: TrainConfig, out: str | Path, command: str) -> LoadedModel:
    """The trained TimeSformer in our safetensors format, with how it was made in the metadata."""
    if not isinstance(result.model, TimeSformer):
        raise TrainError(f"only a TimeSformer can be saved in the checkpoint format, not {type(result.model).__name__}")
    loaded = LoadedModel(result.model, *OFFICIAL_NORMALIZATION, result.labels, "ours")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        out, loaded,
        dataset=config.dataset,
        seed=str(config.seed),
        data_seed=str(config.data_seed),
        command=command,
        epochs=str(config.epochs),
        val_accuracy=f"{result.val_accuracy:.4f}",
        train_seconds=f"{result.seconds:.1f}",
        init=config.init or "scratch",
        sampling_stride=SAMPLING_STRIDE,
        sampling="uniform" if config.augment == "video" else "center",
        torch_version=torch.__version__,
        numpy_version=np.__version__,
        python_version=platform.python_version(),
        train_config=json.dumps(config.to_dict()),
    )
    return loaded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, plus where the model and the resumable state go."""
    types = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=types[f.name], default=f.default,
                            choices=f.metadata["choices"] or None, help=f"{f.metadata['help']} (default: %(default)s)")
    parser.add_argument("--out", required=True, help="the trained model, our .safetensors format")
    parser.add_argument("--state", default="", help="resumable state, written every epoch; resumed from if it exists")


def run(args: argparse.Namespace) -> dict:
    """Train from parsed flags, save the model, and summarise the run."""
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    result = train(config, state=args.state or None)
    if _process_group()[0] == 0:
        save_trained(result, config, args.out, config.command(out=args.out, state=args.state))
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"out": args.out, "epochs": config.epochs, "val_accuracy": round(result.val_accuracy, 4),
            "train_seconds": round(result.seconds, 1), "parameters": sum(p.numel() for p in result.model.parameters())}
