"""The paper's Tables 1-4 and Figures 3-4 in miniature: `python -m analysis.ablations`.

    python -m analysis.ablations all              # every table -> analysis/results/*.json (100 min, 2 cores)
    python -m analysis.ablations table1 --smoke   # a seconds-long version (CI)

Runs train two at a time (`--jobs`, one thread each) with a progress bar; each finished run is kept in
`--work-dir`, so a stopped command resumes where it stopped. The budget and its reasons are in
`analysis/table_runs.py`, the cells and findings in `analysis/tables.py`. Start it with OMP_WAIT_POLICY=PASSIVE
in the environment: on a shared CPU, torch's OpenMP threads otherwise spin while waiting for each other.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import shlex
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from timesformer.train_config import TrainConfig

from .table_runs import BUDGET, CLASSES, PRETRAIN, SEEDS, SMOKE, SMOKE_PRETRAIN, Runner, expected_seconds
from .tables import TRAINED, cells, figure3

log = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).parent / "results"
WORK_DIR = Path(__file__).resolve().parents[1] / "build" / "ablations"
NAMES = (*TRAINED, "figure3")


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_threads": str(torch.get_num_threads()),
        "machine": platform.machine(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def save(name: str, payload: dict, out_dir: Path, runner: Runner | None, seconds: float, command: str) -> Path:
    """analysis/results/<name>.json: the command, versions, budget and seeds beside the table."""
    document = {"name": name, "command": command, "versions": versions(), "seconds": seconds, **payload}
    if runner is not None:
        document |= {
            "budget": runner.budget.to_dict(),
            "pretrain_budget": runner.pretrain.to_dict(),
            "classes": CLASSES,
            "seeds": list(runner.seeds),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def _train_one(runner: Runner, config: TrainConfig, baseline: str) -> str:
    """A worker process: one run, kept in the work folder (its result is read back from there)."""
    torch.set_num_threads(1)
    runner.run(config, baseline)
    return f"{config.dataset} {baseline or config.scheme} seed {config.seed}"


def _train_image_model(runner: Runner) -> str:
    """A worker process: the image model, kept in the work folder."""
    torch.set_num_threads(1)
    return runner.image_model()


def train_cells(runner: Runner, names: list[str], jobs: int) -> None:
    """Every run the tables `names` need and that is not kept yet, `jobs` at a time, with a progress bar. The image
    model trains first, beside the runs that do not start from it (scratch, the 3D CNN); the runs that do are
    queued once it is kept. Each group is queued longest first."""
    wanted = {
        (runner.config(seed=seed, **overrides), baseline)
        for name in names
        if name in TRAINED
        for baseline, overrides in cells(runner)[name]
        for seed in runner.seeds
    }
    pending = [(config, baseline) for config, baseline in wanted if not runner.result_path(config, baseline).exists()]
    pending.sort(key=lambda run: expected_seconds(*run), reverse=True)  # longest first: the last to end are short
    image = str(runner.image_model_path)
    after_image = [(config, baseline) for config, baseline in pending if config.init == image]
    now = [run for run in pending if run not in after_image]
    needs_image = not runner.image_model_path.exists()
    log.info(
        "%d runs kept, %d to train; image model kept: %s", len(wanted) - len(pending), len(pending), not needs_image
    )
    with (
        ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool,
        tqdm(total=len(pending) + needs_image, unit="run", desc="training") as bar,
    ):

        def submit(runs: list[tuple[TrainConfig, str]]) -> set[Future]:
            return {pool.submit(_train_one, runner, config, baseline) for config, baseline in runs}

        image_job = pool.submit(_train_image_model, runner) if needs_image else None
        running = submit(now) | ({image_job} if image_job else submit(after_image))
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                log.debug("finished %s", future.result())
                bar.update()
                if future is image_job:
                    running |= submit(after_image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.ablations", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=[*NAMES, "all"])
    parser.add_argument("--smoke", action="store_true", help="tiny budget, one seed, no paper-scale latency (CI)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help="kept runs: delete it to start afresh")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    command = shlex.join(["python", "-m", "analysis.ablations", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_flush_denormal(True)
    names = list(NAMES) if args.what == "all" else [args.what]
    work = args.work_dir / ("smoke" if args.smoke else "full")
    runner = Runner(SMOKE, SMOKE_PRETRAIN, SEEDS[:1], work) if args.smoke else Runner(BUDGET, PRETRAIN, SEEDS, work)
    os.environ["TIMESFORMER_CLIP_CACHE"] = str(work / "clips")  # the runs of one table share their clips
    start = time.perf_counter()
    train_cells(runner, names, args.jobs)
    for name in names:
        began = time.perf_counter()
        if name == "figure3":
            save(name, figure3(), args.out_dir, None, time.perf_counter() - began, command)
            continue
        kwargs = {"paper_scale": not args.smoke} if name == "table2" else {}
        payload = TRAINED[name](replace(runner, on_run=_refuse_training), **kwargs)
        save(name, payload, args.out_dir, runner, time.perf_counter() - start, command)
    log.info("done in %.0f s", time.perf_counter() - start)
    return 0


def _refuse_training(name: str) -> None:
    raise RuntimeError(f"{name} was not trained ahead: its cell is missing from analysis.tables.cells")


if __name__ == "__main__":
    sys.exit(main())
