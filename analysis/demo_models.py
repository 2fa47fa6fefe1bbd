"""The shipped demo models: one fair recipe for every scheme, the command that trains each, and their card.

    python -m analysis.demo_models train      # every model not yet built, in dependency order, two at a time
    python -m analysis.demo_models clips      # generate their clips beforehand (one core; training would too)
    python -m analysis.demo_models commands   # the command that trains each, in order
    python -m analysis.demo_card              # measure them through video files -> the model card

The recipe, as the paper's: an image model (a space-only ViT on `images`) inflated into every video model. On
`motion` all five schemes then take the same two stages, with the same clips, epochs and schedule:
1. the image model inflated, one head of each block started on the same patch in the previous frame
   (`--temporal-init previous_frame`; not defined for space-only, which never compares frames);
2. trained on with as many extra turn clips as balanced ones (turns are the pair a balanced mix left at
   chance), at half the learning rate.
On `appearance`, divided and space-only take stage 1 alone. Every clip takes a video file's path
(`--augment video`: random size, length, H.264 quality, the paper's scale jitter and random crop).

Stage 1 is built in `build/demo/` and not shipped (space); each run writes a resumable `--state` there,
so `train` picks up where a stopped run left off. Clips are generated once per stage and shared by the schemes
(`TIMESFORMER_CLIP_CACHE`, `build/clips/`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from timesformer import SCHEMES
from timesformer.demo import DEMO_DIR, demo_name
from timesformer.train_config import TrainConfig
from timesformer.train_data import make_splits

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build" / "demo"
CLIP_CACHE = ROOT / "build" / "clips"
PATCH = 8
"""The demo models cut each 64 px frame into 8 x 8 patches of 8 px: on the preset's 4 x 4 grid of 16 px patches no
divided model learned the order of frames."""
IMAGE_MODEL = "space_only_images"
TURNS = "rotate_cw,rotate_ccw"
STEP_COST = {
    "space_only": 0.7,
    "joint_space_time": 1.0,
    "divided_space_time": 1.0,
    "sparse_local_global": 1.1,
    "axial": 1.3,
}
"""Relative cost of a training step (measured, one thread), to start the longest runs first."""


@dataclass(frozen=True)
class DemoModel:
    """One model of the recipe: its training config, and whether it is shipped or only built on the way."""

    name: str
    config: TrainConfig
    shipped: bool
    stage: int = 1

    @property
    def path(self) -> Path:
        return (DEMO_DIR if self.shipped else BUILD_DIR) / f"{self.name}.safetensors"

    @property
    def state(self) -> Path:
        return BUILD_DIR / f"{self.name}.state"

    @property
    def command(self) -> str:
        return self.config.command(out=_relative(self.path), state=_relative(self.state))

    @property
    def cost(self) -> float:
        clips = self.config.epochs * (self.config.train_size + self.config.focus_size)
        return clips * STEP_COST[self.config.scheme] * (1 if self.config.dataset != "images" else 1 / 8)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


IMAGE = TrainConfig(
    dataset="images",
    scheme="space_only",
    patch_size=PATCH,
    augment="video",
    train_size=40000,
    val_size=1000,
    epochs=16,
    batch_size=32,
    lr=1e-3,
    warmup_epochs=0.2,
    threads=1,
)
VIDEO = TrainConfig(
    patch_size=PATCH,
    augment="video",
    temporal_init="previous_frame",
    train_size=24000,
    val_size=500,
    epochs=4,
    batch_size=16,
    lr=1e-3,
    warmup_epochs=0.3,
    threads=1,
)
"""Stage 1 of every video model (the image model inflated; about 1 h a model on one core)."""
LATER_STAGES = (
    dict(
        temporal_init="paper",
        train_size=12000,
        focus=TURNS,
        focus_size=12000,
        epochs=3,
        lr=5e-4,
        warmup_epochs=0.1,
        data_seed=2,
    ),
)
"""Stage 2 on `motion`: fresh clips, half of them extra turns, at half the learning rate, decaying to zero."""
APPEARANCE_SCHEMES = ("divided_space_time", "space_only")


def _start(scheme: str) -> str:
    """The previous-frame start wherever the scheme compares frames (timesformer/temporal_init.py)."""
    return "paper" if SCHEMES[scheme].per_frame else "previous_frame"


def recipe() -> dict[str, DemoModel]:
    """Every model of the recipe by name, each after the model it starts from."""
    image = DemoModel(IMAGE_MODEL, IMAGE, shipped=True)
    models = {image.name: image}
    start = replace(VIDEO, init=_relative(image.path))
    for scheme in SCHEMES:
        config = replace(start, scheme=scheme, temporal_init=_start(scheme))
        stages = [config] + [replace(config, **later) for later in LATER_STAGES]
        previous: DemoModel | None = None
        for number, stage in enumerate(stages, 1):
            final = number == len(stages)
            name = demo_name(scheme, "motion") + ("" if final else f"_stage{number}")
            if previous is not None:
                stage = replace(stage, init=_relative(previous.path))
            previous = models[name] = DemoModel(name, stage, shipped=final, stage=number)
    for scheme in APPEARANCE_SCHEMES:
        name = demo_name(scheme, "appearance")
        models[name] = DemoModel(
            name, replace(start, dataset="appearance", scheme=scheme, temporal_init=_start(scheme)), shipped=True
        )
    return models


def train_demo_models(names: list[str] | None = None, jobs: int = 2) -> None:
    """Train each model of `names` (default: all) whose file is missing, as its command says, from the repository
    root: each once the file it starts from exists, `jobs` at a time (one thread each); earlier stages first (so
    a stopped session leaves every scheme at the same stage), then the longest chains. A model whose start is
    still being trained elsewhere (another driver) is waited for. Delete a file to retrain it; a stopped run
    resumes from its state."""
    models = recipe()
    pending = {name for name in (names or models) if not models[name].path.exists()}
    log.info("kept: %s", ", ".join(sorted(set(names or models) - pending)) or "none")
    outputs = {_relative(model.path) for model in models.values()}
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(jobs) as pool:
        while pending or running:
            ready = sorted(
                (n for n in pending if _startable(models[n].config.init)),
                key=lambda n: (models[n].stage, -_chain_cost(n, models)),
            )
            for name in ready[: jobs - len(running)]:
                pending.discard(name)
                running[pool.submit(_run, models[name].command)] = name
            if not running:
                never = [n for n in pending if models[n].config.init not in outputs]
                if never:
                    raise RuntimeError(f"cannot start {', '.join(sorted(never))}: what they start from is missing")
                time.sleep(POLL_S)  # their starts are being trained by another driver
                continue
            done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                future.result()  # re-raise a failed run


POLL_S = 60.0


def _startable(init: str) -> bool:
    return not init or (ROOT / init).exists()


def make_clips(names: list[str] | None = None) -> None:
    """Generate the clips of every model of `names` (default: all) into the cache, each distinct set once, so
    that training runs find them ready (a run generates what it misses itself)."""
    os.environ["TIMESFORMER_CLIP_CACHE"] = str(CLIP_CACHE)
    for name, model in recipe().items():
        if names is None or name in names:
            log.info("clips of %s", name)
            make_splits(model.config)


def _chain_cost(name: str, models: dict[str, DemoModel]) -> float:
    """The cost of a model and of every model that starts from it: the longest chains start first."""
    path = _relative(models[name].path)
    return models[name].cost + sum(
        _chain_cost(other, models) for other, model in models.items() if model.config.init == path
    )


def _run(command: str) -> None:
    log.info("%s", command)
    start = time.perf_counter()
    _, *args = shlex.split(command)  # `python`: this interpreter
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_WAIT_POLICY": "PASSIVE",
        "TIMESFORMER_CLIP_CACHE": str(CLIP_CACHE),
    }
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, env=env)
    log.info("%.0f s wall-clock: %s", time.perf_counter() - start, command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.demo_models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["train", "clips", "commands"])
    parser.add_argument("--jobs", type=int, default=2, help="train: models trained at once, one thread each")
    parser.add_argument("--only", nargs="*", help="train, clips: these models (and nothing they need)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.what == "commands":
        for model in recipe().values():
            print(model.command)
    elif args.what == "clips":
        make_clips(args.only)
    else:
        train_demo_models(args.only, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
