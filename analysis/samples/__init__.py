"""Sample clips bundled with the app: three short generated videos per class of the `motion` and `appearance` sets.

They are written by `timesformer.datasets.write_samples` from a seed the demo models were neither trained nor
validated on (those use seeds 0-7), 16 frames at 128 px, about 1.7 MB in all. Regenerate them with
`python -m analysis.samples`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from timesformer.datasets import DATASETS, write_samples

SAMPLE_DIR = Path(__file__).parent
SEED = 2021
SIZE = 128
FRAMES = 16
PER_CLASS = 3


@dataclass(frozen=True)
class Sample:
    """A bundled clip and what it shows: `<dataset>_<class>_<k>.mp4`."""

    path: Path
    dataset: str
    label: str

    @property
    def title(self) -> str:
        return f"{self.dataset} · {self.label.replace('_', ' ')}"


def samples(folder: Path = SAMPLE_DIR) -> list[Sample]:
    """The bundled clips, motion first, each dataset in its class order."""
    found = []
    for path in sorted(folder.glob("*.mp4")):
        dataset, _, rest = path.stem.partition("_")
        found.append(Sample(path, dataset, rest.rsplit("_", 1)[0]))

    def order(sample: Sample) -> tuple[int, int, str]:
        classes = DATASETS[sample.dataset].classes if sample.dataset in DATASETS else ()
        rank = classes.index(sample.label) if sample.label in classes else len(classes)
        return (sample.dataset != "motion", rank, sample.path.name)

    return sorted(found, key=order)


def regenerate(folder: Path = SAMPLE_DIR) -> list[Path]:
    """Rewrite every sample clip (deterministic: same seed, same bytes with the same encoder)."""
    for old in folder.glob("*.mp4"):
        old.unlink()
    return write_samples(folder, per_class=PER_CLASS, seed=SEED, num_frames=FRAMES, size=SIZE)
