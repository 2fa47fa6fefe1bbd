"""The demo models' card: every model of the recipe measured through video files, written as JSON and Markdown.

    python -m analysis.demo_card     # -> analysis/results/demo_models.json and timesformer/weights/MODEL_CARD.md

Held-out accuracy is measured the way a user meets the model (`analysis.video_eval`); the accuracy on the
generator's own tensors (64 px, 8 frames, no file) stands beside it, labelled, because the gap between the two
is what the video-path recipe closed. Stages that are built but not shipped are measured when their file is there.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import torch

from analysis.demo_models import PATCH, DemoModel, recipe
from analysis.samples import samples
from analysis.video_eval import HELDOUT, measure, predict_reader, scores, video_logits
from timesformer.checkpoints import LoadedModel, load_checkpoint
from timesformer.cost import count_macs
from timesformer.datasets import generate
from timesformer.demo import DEMO_DIR
from timesformer.model import PRESETS
from timesformer.temporal_init import previous_frame_stage
from timesformer.video import normalise

log = logging.getLogger(__name__)

RESULTS = Path(__file__).parent / "results" / "demo_models.json"
NOTES = Path(__file__).parent / "demo_notes.md"
"""How the recipe was found: measurements kept as Markdown, included in the card."""
HELDOUT_FOLDER = Path(tempfile.gettempdir()) / "timesformer-explorer-heldout"
"""Where the held-out files are written (once; they are regenerated from their seed when missing)."""


MEASURED_ON = "held-out mp4 files, read as predict reads them"
"""What every accuracy of the card was measured on; a results file that does not say so predates the video path."""


def recorded(name: str) -> dict | None:
    """What the card measured for a shipped model (`analysis/results/demo_models.json`), or None if it has no
    entry or the file was not measured through video files: held-out `accuracy` and `twin_accuracy`, `samples`
    {correct, total}, ..."""
    if not RESULTS.exists():
        return None
    found = json.loads(RESULTS.read_text())
    return found["models"].get(name) if found.get("measured_on") == MEASURED_ON else None


def tensor_scores(loaded: LoadedModel, dataset: str) -> dict:
    """Scores on the generator's tensors of the held-out seed at the model's own size: the old, flattering path."""
    files = HELDOUT[dataset]
    config = loaded.config
    clips = generate(dataset, files.clips, files.seed, config.num_frames, config.image_size)
    with torch.inference_mode():
        logits = torch.cat(
            [
                loaded.model(normalise(clips.frames[i : i + 50], loaded.mean, loaded.std))
                for i in range(0, len(clips), 50)
            ]
        )
    return scores(logits, clips.labels, dataset)


def sample_score(loaded: LoadedModel, dataset: str) -> dict[str, int]:
    """How many of the bundled sample clips of `dataset` the model gets right, read as `predict` reads them."""
    bundled = [sample for sample in samples() if sample.dataset == dataset]
    if not bundled:
        return {"correct": 0, "total": 0}
    logits = video_logits(loaded.model, [(sample.path, 0) for sample in bundled], predict_reader(loaded))
    predicted = [loaded.labels[i] for i in logits.argmax(1).tolist()]
    return {"correct": sum(p == s.label for p, s in zip(predicted, bundled)), "total": len(bundled)}


def start_of(loaded: LoadedModel, model: DemoModel) -> str:
    """What the model's attention across frames started from, in words."""
    if model.stage > 1:
        return f"stage {model.stage - 1}'s weights"
    if loaded.model.block_type.per_frame:
        return "nothing to start: no stage compares frames"
    if model.config.temporal_init != "previous_frame":
        return "the paper's: the image model's attention copied"
    stage = previous_frame_stage(loaded.model)
    return f"head 0 of `{stage.prefix}attn` (the {stage.name} stage) on the same patch in the previous frame"


def measure_model(model: DemoModel) -> dict:
    """Everything the card says about one model, measured now or read from its metadata."""
    loaded = load_checkpoint(model.path)
    dataset = loaded.metadata["dataset"]
    row = {
        "dataset": dataset,
        "shipped": model.shipped,
        **measure(loaded.model, HELDOUT[dataset], HELDOUT_FOLDER, predict_reader(loaded)),
        "tensor_accuracy": tensor_scores(loaded, dataset)["accuracy"],
        "params": loaded.model.num_parameters(),
        "gmacs_per_clip": count_macs(loaded.config)["total"] / 1e9,
        "train_seconds": float(loaded.metadata["train_seconds"]),
        "val_accuracy": float(loaded.metadata["val_accuracy"]),
        "init": loaded.metadata["init"],
        "start": start_of(loaded, model),
        "command": loaded.metadata["command"],
        "megabytes": model.path.stat().st_size / 2**20,
    }
    if dataset != "images":
        row["samples"] = sample_score(loaded, dataset)
    return row


def measure_all() -> dict:
    """Every model of the recipe whose file is there, shipped ones first in recipe order."""
    models = {name: model for name, model in recipe().items() if model.path.exists()}
    measured = {}
    for name, model in sorted(models.items(), key=lambda item: not item[1].shipped):
        log.info("measuring %s", name)
        measured[name] = measure_model(model)
    return {"heldout": {dataset: vars(files) for dataset, files in HELDOUT.items()}, "models": measured}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def write_card(measured: dict) -> str:
    """MODEL_CARD.md from the measurements, the recipe and the notes."""
    demo = PRESETS["demo"]
    motion = HELDOUT["motion"]
    lines = [
        "# Demo models",
        "",
        f"Small TimeSformers (the `demo` preset: {demo.num_frames} frames x {demo.image_size} px, width "
        f"{demo.embed_dim}, depth {demo.depth}, {demo.num_heads} heads; "
        f"patch {PATCH} instead of its {demo.patch_size}) "
        "trained on CPU on the generated datasets of `timesformer/datasets.py`. They exist so the app has real "
        "trained attention to show; they are not Kinetics or Something-Something models.",
        "",
        "**How every accuracy here was measured: through video files.** Held-out clips of seed "
        f"{motion.seed} (training and validation used seeds 0-7) are drawn at {motion.size} px (training scenes are "
        f"drawn at multiples of 16 px), {motion.frames} frames for the video sets, {motion.clips} per dataset, written "
        "as H.264 mp4 and read back with `timesformer.inference.read_clip`, exactly as `python -m timesformer "
        "predict` reads a video (uniform segments, short side resized, centre crop). *Tensor accuracy* is the "
        "same seed's clips fed as the generator's raw tensors at the model's own size, the flattering path the "
        "card used to report; it stands beside the video-path number, never in its place. *Samples* counts the "
        "bundled clips of the app (`analysis/samples/`) read the same way. Twin accuracy: how often the true "
        "`motion` class scores above its time-reversed twin, 50% for a model blind to the order of frames.",
        "",
        "| model | shipped | held-out accuracy (video files) | twin accuracy | tensor accuracy | samples | "
        "params | GMACs/clip | training (s) | MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in measured["models"].items():
        sample = row.get("samples")
        sampled = f"{sample['correct']}/{sample['total']}" if sample else "-"
        lines.append(
            f"| `{name}` | {'yes' if row['shipped'] else 'no'} | {_percent(row['accuracy'])} | "
            f"{_percent(row.get('twin_accuracy'))} | {_percent(row['tensor_accuracy'])} | "
            f"{sampled} | {row['params']:,} | "
            f"{row['gmacs_per_clip']:.3f} | {row['train_seconds']:.0f} | {row['megabytes']:.1f} |"
        )
    pairs_by_model = {name: row["pair_accuracy"] for name, row in measured["models"].items() if "pair_accuracy" in row}
    if pairs_by_model:
        pairs = list(next(iter(pairs_by_model.values())))
        lines += [
            "",
            "Held-out accuracy per twin pair of `motion`, video files (50%: the attribute is known, not its "
            "direction):",
            "",
            f"| model | {' | '.join(pairs)} |",
            f"|---{'|---' * len(pairs)}|",
        ]
        lines += [
            f"| `{name}` | {' | '.join(_percent(row[pair]) for pair in pairs)} |"
            for name, row in pairs_by_model.items()
        ]
    lines += ["", "What each model's attention across frames started from:", ""]
    lines += [f"- `{name}`: {row['start']}" for name, row in measured["models"].items() if row["dataset"] != "images"]
    lines += [
        "",
        NOTES.read_text().strip(),
        "",
        "## Regeneration commands",
        "",
        "`python -m analysis.demo_models train` runs them in order (two at a time, each resumable from its "
        "state); then `python -m analysis.demo_card`. One by one, from the repository root:",
        "",
    ]
    for model in recipe().values():
        lines += [f"- `{model.name}`:", "  ```", f"  OMP_WAIT_POLICY=PASSIVE {model.command}", "  ```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # evaluation only: one thread avoids OpenMP spin-waiting on a shared CPU
    measured = measure_all()
    command = shlex.join(["python", "-m", "analysis.demo_card", *(sys.argv[1:] if argv is None else argv)])
    RESULTS.write_text(
        json.dumps({"name": "demo_models", "command": command, "measured_on": MEASURED_ON, **measured}, indent=1)
    )
    (DEMO_DIR / "MODEL_CARD.md").write_text(write_card(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
