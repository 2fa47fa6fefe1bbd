"""The demo models shipped with the project: small TimeSformers trained on our generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

DEMO_DIR = Path(os.environ.get("TIMESFORMER_DEMO_DIR", Path(__file__).parent / "weights"))
"""Where the demo models are looked for; TIMESFORMER_DEMO_DIR points elsewhere (tests, your own models)."""


class DemoMissing(FileNotFoundError):
    """No shipped demo model for the asked scheme and dataset."""


def demo_name(scheme: str, dataset: str) -> str:
    """The name of the demo model of a scheme trained on a dataset, e.g. `divided_space_time_motion`."""
    return f"{scheme}_{dataset}"


def demo_checkpoint(scheme: str = "divided_space_time", dataset: str = "motion") -> Path:
    path = DEMO_DIR / f"{demo_name(scheme, dataset)}.safetensors"
    if not path.exists():
        shipped = sorted(p.stem for p in DEMO_DIR.glob("*.safetensors"))
        raise DemoMissing(
            f"no demo model {path.name} in {DEMO_DIR} (have: {', '.join(shipped) or 'none'}); "
            "give a checkpoint of your own"
        )
    return path
