"""The reproduction's saved results (analysis/results/*.json) as the Ablations page shows them: read when they
change, numbers as "mean ± std", and the sentence that says how each was measured, from the file itself."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

import analysis.ablations as ablations
from analysis.table_runs import HELDOUT_SEED


@st.cache_data(show_spinner=False)
def _read(path: str, stamp: float) -> dict:
    return json.loads(Path(path).read_text())


def result(name: str) -> dict | None:
    """analysis/results/<name>.json, re-read when the file changes; None when the reproduction has not run."""
    path = Path(ablations.RESULTS_DIR) / f"{name}.json"
    return _read(str(path), path.stat().st_mtime) if path.exists() else None


def pm(cell: dict | None, key: str = "accuracy") -> str:
    """'81.2 ± 1.3' (percent) from a cell's {'mean', 'std'}."""
    if not cell or not cell.get(key):
        return "–"
    return f"{100 * cell[key]['mean']:.1f} ± {100 * cell[key]['std']:.1f}"


def seconds_pm(cell: dict | None, key: str) -> str:
    """'312 ± 40' (seconds) from a cell's {'mean', 'std'}."""
    if not cell or not cell.get(key):
        return "–"
    return f"{cell[key]['mean']:.0f} ± {cell[key]['std']:.0f}"


def mean(cell: dict | None, key: str = "accuracy") -> float | None:
    return 100 * cell[key]["mean"] if cell and cell.get(key) else None


def std(cell: dict | None, key: str = "accuracy") -> float | None:
    return 100 * cell[key]["std"] if cell and cell.get(key) else None


def chance_levels(found: dict, datasets: tuple[str, ...] = ("appearance", "motion")) -> dict[str, float]:
    """Chance of each dataset's task as chart lines in %, from the result file (none where it records none)."""
    chance = found.get("chance", {})
    return {f"chance, {d} {100 * chance[d]:.0f}%": 100 * chance[d] for d in datasets if d in chance}


def duration(seconds: float) -> str:
    """'0.4 s', '40 s', '12 min', '2.5 h': a run's time in the unit that reads best."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def how_measured(found: dict) -> str:
    """Command, budget, seeds, what the accuracy was measured on, versions and time, as the file records them.
    Results with a finding were written by the reproduction that reads held-out video files; older ones
    measured their validation clips."""
    budget, seeds = found.get("budget", {}), found.get("seeds", [])
    measured_on = (
        f"held-out video files of seed {HELDOUT_SEED}"
        if "finding" in found
        else f"{budget.get('val_size')} validation clips"
    )
    took = (
        f"{duration(found['seconds'])} to run"
        if found["seconds"] >= 1
        else "no new training: its runs were kept from an earlier table"
    )
    classes = "; ".join(f"{d}: {names.replace(',', ', ')}" for d, names in found.get("classes", {}).items())
    return (
        f"Measured by `{found['command']}`: `{budget.get('preset')}` preset, {budget.get('train_size')} training "
        f"clips, {budget.get('epochs')} epoch(s), {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), accuracy "
        f"on {measured_on}"
        + (f"; classes {classes}" if classes else "")
        + (
            f"; clips through a video file's path (`--augment {budget['augment']}`), start "
            f"`{budget['temporal_init']}` wherever the scheme compares frames and has a time embedding"
            if budget.get("augment") == "video"
            else ""
        )
        + f"; torch {found['versions']['torch']}, {found['versions']['cpu_threads']} CPU threads, {took}."
    )


def show_finding(found: dict) -> None:
    """The sentence the reproduction wrote from the same numbers (`analysis.tables`), when it wrote one."""
    if found.get("finding"):
        st.markdown(f":material/lightbulb: {found['finding']}")


def not_run_yet(command: str, result_name: str, note: str = "") -> None:
    """The message of a section whose result file is missing: which command writes it."""
    st.info(
        f"Not run on this machine yet: `python -m analysis.ablations {command}` writes "
        f"analysis/results/{result_name}.json{note}."
    )


def not_run() -> None:
    """The message of a table section before the reproduction has run."""
    not_run_yet("all", "*", " (about an hour on 2 cores); `--smoke` gives a seconds-long version")


def heldout_text(heldout: dict) -> str:
    """The model card's held-out clips in words (one set for all datasets in older cards, one per dataset now)."""
    if "seed" in heldout:
        return f"{heldout['clips']} clips generated with seed {heldout['seed']}"
    return "; ".join(f"{files['clips']} {dataset} clips of seed {files['seed']}" for dataset, files in heldout.items())
