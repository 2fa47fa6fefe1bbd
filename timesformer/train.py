"""Train a TimeSformer on CPU on one of the generated datasets, reproducibly (`train_config.py` says what a run
is, `train_data.py` what it sees).

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
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoints import (
    LoadedModel,
    load_checkpoint,
    save_checkpoint,
)
from .datasets import DATASETS
from .inflate import InflationError, inflate
from .model import TimeSformer, TimeSformerConfig
from .temporal_init import TemporalInitError, start_from_previous_frame
from .train_config import TrainConfig, TrainError
from .train_data import Splits, accuracy, clips, make_splits
from .video import OFFICIAL_NORMALIZATION

log = logging.getLogger(__name__)

STEP_MILESTONES = (11 / 15, 14 / 15)
"""The paper's step schedule (lr / 10 after epochs 11 and 14 of 15), as fractions of the run."""
SGD_MOMENTUM = 0.9
SAMPLING_STRIDE = "1"
"""Generated clips are consecutive frames: stored so that inference samples real videos alike. Models trained
through the video path (`augment="video"`) took one frame of each of T equal segments instead, and say so
(`sampling`: "uniform")."""


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
        raise TrainError(
            f"{config.init} is trained already: its temporal attention needs no {config.temporal_init} "
            "start (that is for inflating an image model)"
        )
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


def _check_state(state: dict, config: TrainConfig, path: Path) -> None:
    # a state written before a field existed ran with that field's default
    saved = {f.name: f.default for f in fields(TrainConfig)} | state["config"]
    if saved != config.to_dict():
        changed = [k for k, v in config.to_dict().items() if saved.get(k) != v]
        raise TrainError(
            f"{path} was written by a run with a different config ({', '.join(changed)}); "
            "use another --state path or the same settings"
        )


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
        raise TrainError(
            f"a batch of {smallest_batch} clips cannot give each of {world} processes one: "
            "use a larger batch_size, or a train_size that leaves a larger last batch"
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(config, step, steps_per_epoch)
    )
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
        batches = tqdm(
            order.split(config.batch_size),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress or rank > 0,
            leave=False,
        )
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
        entry = EpochLog(
            epoch + 1,
            loss_sum / len(data.train),
            correct / len(data.train),
            accuracy(model, data.val),
            optimizer.param_groups[0]["lr"],
            seconds,
        )
        history.append(entry)
        if rank == 0:
            log.info(
                "epoch %d/%d  loss %.4f  train acc %.3f  val acc %.3f  lr %.2e  %.1f s",
                entry.epoch,
                config.epochs,
                entry.loss,
                entry.train_accuracy,
                entry.val_accuracy,
                entry.lr,
                entry.seconds,
            )
        if path is not None and rank == 0:
            _save_state(path, config, model, optimizer, scheduler, history)
        if on_epoch is not None:
            on_epoch(entry)
    return TrainResult(model.eval(), history, list(data.train.class_names))


def _save_state(
    path: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[EpochLog],
) -> None:
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
        out,
        loaded,
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


def run(args: argparse.Namespace) -> dict:
    """Train from parsed flags, save the model, and summarise the run."""
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    result = train(config, state=args.state or None)
    if _process_group()[0] == 0:
        save_trained(result, config, args.out, config.command(out=args.out, state=args.state))
    if dist.is_initialized():
        dist.destroy_process_group()
    return {
        "out": args.out,
        "epochs": config.epochs,
        "val_accuracy": round(result.val_accuracy, 4),
        "train_seconds": round(result.seconds, 1),
        "parameters": sum(p.numel() for p in result.model.parameters()),
    }
