"""Generated stand-ins for SSv2 ("motion"), Kinetics ("appearance") and ImageNet ("images").

No real dataset can be downloaded here, so clips are drawn from a seed, each with a per-frame mask of its one
target object (distractors are not in it): that is what lets us check that attention rollout looks at the object.

- motion: the class is a temporal pattern; classes come in time-reversed twins (labels 2k and 2k+1). Every
  attribute of the target (x, y, log-size, angle, opacity) lives on a circle and starts at a uniform phase; the
  class picks which attribute drifts and in which direction. So in *every* frame *every* attribute is uniform
  whatever the class, and no single frame says anything about it. The price is the wrap-around: an object that
  leaves on one side re-enters on the other, a growing one pops back to its smallest size, a fading one to faint.
- appearance: the class is the target's shape and texture; position, size and angle drift between two random
  end points, so its motion is noise.
- images: single frames of every shape, for image pretraining of the spatial weights.

Colours, sizes, speeds, textured backgrounds (gradient, stripes, blotches), sensor noise and 1-2 distractor bars
are random everywhere. Coordinates are fractions of the frame, so any `size` shows the same scene.
"""

from __future__ import annotations

import fcntl
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import torch

from .drawing import PATTERNS, Look, Track, background, contrasting, draw

APPEARANCE_LOOKS: dict[str, Look] = {
    **{name: Look(name) for name in ("circle", "square", "triangle", "star", "ring", "cross", "crescent", "arrow")},
    "striped_square": Look("square", "stripes"),
    "checkered_disc": Look("circle", "checker"),
}
IMAGE_LOOKS: dict[str, Look] = {**APPEARANCE_LOOKS, "ell": Look("ell"), "wedge": Look("wedge")}
MOTION_SHAPES = ("arrow", "ell", "wedge")  # no rotational symmetry: a turn's direction is never ambiguous, as a
# square's is (turned 80 degrees it looks turned -10)
MOTION_CLASSES: tuple[tuple[str, str, int], ...] = (  # (name, attribute that drifts, direction); y points down
    ("move_right", "x", 1),
    ("move_left", "x", -1),
    ("move_down", "y", 1),
    ("move_up", "y", -1),
    ("grow", "size", 1),
    ("shrink", "size", -1),
    ("rotate_cw", "angle", 1),
    ("rotate_ccw", "angle", -1),
    ("fade_in", "alpha", 1),
    ("fade_out", "alpha", -1),
)
# Each motion attribute's circle (low, high) and how far along it the drifting one goes per clip (fractions). Size
# and opacity have wide circles and drifts: a grow multiplies the radius by 2.0-2.6, a fade changes opacity by
# 0.35-0.49, changes as plain at 64 px as a move's (narrower ones left both pairs at chance); circles reaching a
# radius of 0.08 or an opacity of 0.15 held back the tables' 32 px move pair (analysis/demo_notes.md).
_CIRCLES = {
    "x": (0.0, 1.0),
    "y": (0.0, 1.0),
    "size": (np.log(0.1), np.log(0.4)),
    "angle": (0.0, 2 * np.pi),
    "alpha": (0.3, 1.0),
}
_DRIFT = {"x": (0.25, 0.5), "y": (0.25, 0.5), "size": (0.5, 0.7), "angle": (0.2, 0.4), "alpha": (0.5, 0.7)}
_TARGET_RADIUS = (0.12, 0.28)  # appearance/images targets, fraction of the frame
_DISTRACTOR_RADIUS = (0.06, 0.12)
_DISTRACTOR_DRIFT = 0.08  # at most this much of each attribute's range per clip: clutter that barely moves, turns or
# grows, so that the class is the one clear change (bars drifting as fast as the target kept small ViTs at chance)
_NOISE = 5.0  # sensor noise, uniform in +-5 (0-255 units): cheaper than Gaussian, as good here


def _motion_target(label: int, rng: np.random.Generator, t: np.ndarray) -> tuple[Look, Track]:
    """Every attribute at a uniform phase on its circle; the class's one drifts (see the module docstring)."""
    _, drifting, direction = MOTION_CLASSES[label]
    value = {}
    for name, (low, high) in _CIRCLES.items():
        phase = np.full_like(t, rng.random())
        if name == drifting:
            phase += direction * rng.uniform(*_DRIFT[name]) * t
        value[name] = low + (high - low) * (phase % 1.0)
    look = Look(str(rng.choice(MOTION_SHAPES)), str(rng.choice(PATTERNS)))
    return look, Track(value["x"], value["y"], np.exp(value["size"]), value["angle"], value["alpha"])


def _drift_track(
    rng: np.random.Generator, t: np.ndarray, radius_range: tuple[float, float], drift: float = 1.0
) -> Track:
    """Random start and end pose, interpolated: a random direction and speed, telling nothing, inside the frame.

    Each attribute ends at most `drift` of its range from where it starts: position along each axis (the frame),
    size (the radius range, in log) and angle (a quarter turn either way). `drift=1` leaves them free."""

    def lerp(ends: np.ndarray) -> np.ndarray:
        return ends[0] + (ends[1] - ends[0]) * t

    def ends(low: float, high: float) -> np.ndarray:
        start = rng.uniform(low, high)
        reach = drift * (high - low)
        return np.array([start, rng.uniform(max(low, start - reach), min(high, start + reach))])

    radius = lerp(np.exp(ends(*np.log(radius_range))))
    margin = radius.max() + 0.05  # cv2 anti-aliasing fattens shapes by ~0.5 px: keep off the border
    x, y = lerp(ends(margin, 1 - margin)), lerp(ends(margin, 1 - margin))
    angle = rng.uniform(0, 2 * np.pi) + drift * rng.uniform(-np.pi / 2, np.pi / 2) * t
    return Track(x, y, radius, angle, np.ones_like(t))


def _look_target(looks: tuple[Look, ...], label: int, rng: np.random.Generator, t: np.ndarray) -> tuple[Look, Track]:
    return looks[label], _drift_track(rng, t, _TARGET_RADIUS)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: class names, default and allowed clip lengths, and how its target object is drawn."""

    classes: tuple[str, ...]
    num_frames: int
    min_frames: int
    max_frames: int | None
    target: Callable[[int, np.random.Generator, np.ndarray], tuple[Look, Track]]


DATASETS: dict[str, DatasetSpec] = {
    "motion": DatasetSpec(tuple(c[0] for c in MOTION_CLASSES), 8, 2, None, _motion_target),
    "appearance": DatasetSpec(
        tuple(APPEARANCE_LOOKS), 8, 1, None, partial(_look_target, tuple(APPEARANCE_LOOKS.values()))
    ),
    "images": DatasetSpec(tuple(IMAGE_LOOKS), 1, 1, 1, partial(_look_target, tuple(IMAGE_LOOKS.values()))),
}


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def class_names(dataset: str) -> list[str]:
    return list(_spec(dataset).classes)


def motion_twin(label: int) -> int:
    """The time-reversed twin of a `motion` class (move_left <-> move_right, grow <-> shrink, ...)."""
    if not 0 <= label < len(MOTION_CLASSES):
        raise ValueError(f"motion label must be in [0, {len(MOTION_CLASSES)}), got {label}")
    return label ^ 1


def make_video(
    dataset: str,
    label: int,
    rng: np.random.Generator,
    num_frames: int | None = None,
    size: int = 64,
    times: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of class `label`: frames uint8 [T, H, W, 3] RGB and the target's mask bool [T, H, W].

    `num_frames` defaults to the dataset's (8, or 1 for images), evenly spread over the clip's motion; `times`
    (in [0, 1], one per frame) draws the same scene at other instants instead. Only `rng` decides the content.
    """
    spec = _spec(dataset)
    t = np.linspace(0.0, 1.0, spec.num_frames if num_frames is None else num_frames) if times is None else times
    num_frames = len(t)
    if not 0 <= label < len(spec.classes):
        raise ValueError(f"{dataset} label must be in [0, {len(spec.classes)}), got {label}")
    if num_frames < spec.min_frames or (spec.max_frames is not None and num_frames > spec.max_frames):
        allowed = spec.min_frames if spec.max_frames == spec.min_frames else f"at least {spec.min_frames}"
        raise ValueError(f"{dataset} clips need {allowed} frame(s), got num_frames={num_frames}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels for the shapes to be recognisable, got {size}")
    scenery = background(rng, size)
    backdrop = scenery.mean(axis=(0, 1))
    frames = np.repeat(scenery[None], num_frames, axis=0)
    for _ in range(rng.integers(1, 3)):  # distractors go behind the target, so the mask is all target
        colour = contrasting(rng, [backdrop], candidates=4)
        draw(frames, Look("bar"), (colour, colour), _drift_track(rng, t, _DISTRACTOR_RADIUS, _DISTRACTOR_DRIFT))
    look, track = spec.target(label, rng, t)
    first = contrasting(rng, [backdrop])
    mask = draw(frames, look, (first, contrasting(rng, [backdrop, first])), track)
    frames += _NOISE * (2 * rng.random(frames.shape, dtype=np.float32) - 1)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), mask


@dataclass
class VideoSet:
    """A generated dataset: frames uint8 [n, T, H, W, 3] RGB, target masks bool [n, T, H, W], labels int64 [n]."""

    dataset: str
    frames: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def concatenate(*sets: VideoSet) -> VideoSet:
    """One set holding the clips of `sets` in order (of one dataset)."""
    if len({videos.dataset for videos in sets}) != 1:
        raise ValueError(f"cannot concatenate clips of different datasets: {', '.join(v.dataset for v in sets)}")
    return VideoSet(
        sets[0].dataset,
        *(np.concatenate([getattr(v, name) for v in sets]) for name in ("frames", "masks", "labels")),
        sets[0].class_names,
    )


Renderer = Callable[[str, int, np.random.Generator, np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]
"""Draws one clip from (dataset, label, the scene's rng, a second rng for the rest, frames, size) as `make_video`
does, e.g. through a video file's path (`timesformer.augment.VideoPath`)."""


def cached(key: str, build: Callable[[], VideoSet], folder: str | Path | None) -> VideoSet:
    """The clips `build()` makes, kept in `folder/<key>/` as .npy files and memory-mapped when asked for again, so
    that runs sharing their clips (every scheme of a recipe) generate them once; None: no cache. The first of
    several processes asking at once builds them while the others wait on a lock."""
    if folder is None:
        return build()
    place = Path(folder) / key
    place.parent.mkdir(parents=True, exist_ok=True)
    with open(place.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (place / "meta.json").exists():
            videos = build()
            place.mkdir(exist_ok=True)
            for name in ("frames", "masks", "labels"):
                np.save(place / f"{name}.npy", getattr(videos, name))
            (place / "meta.json").write_text(json.dumps({"dataset": videos.dataset, "class_names": videos.class_names}))
    meta = json.loads((place / "meta.json").read_text())
    arrays = {name: np.load(place / f"{name}.npy", mmap_mode="r") for name in ("frames", "masks", "labels")}
    return VideoSet(
        meta["dataset"], arrays["frames"], arrays["masks"], np.asarray(arrays["labels"]), meta["class_names"]
    )


def generate(
    dataset: str,
    n: int,
    seed: int,
    num_frames: int | None = None,
    size: int = 64,
    classes: Sequence[str] | None = None,
    render: Renderer | None = None,
) -> VideoSet:
    """`n` clips, labels cycling through the classes (balanced), or through `classes` alone (names; labels keep
    the dataset's numbering). Clip i depends only on (dataset, seed, i, its label), so the same seed gives
    identical bytes and a larger `n` extends a smaller one. `render` draws each clip instead of `make_video`; the
    scene is the same, its second rng is seeded from (dataset, seed, i) too."""
    spec = _spec(dataset)
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be non-negative, got n={n}, seed={seed}")
    if classes is not None and (not classes or set(classes) - set(spec.classes)):
        raise ValueError(f"classes must be some of {dataset}'s ({', '.join(spec.classes)}), got {list(classes)}")
    num_frames = spec.num_frames if num_frames is None else num_frames
    cycle = np.array([spec.classes.index(name) for name in classes] if classes else range(len(spec.classes)))
    labels = cycle[np.arange(n) % len(cycle)].astype(np.int64)
    frames = np.empty((n, num_frames, size, size, 3), np.uint8)
    masks = np.empty((n, num_frames, size, size), bool)
    stream = zlib.crc32(dataset.encode())  # a stable id, unlike hash(): datasets with one seed still differ
    for i, label in enumerate(labels):
        rng = np.random.default_rng([stream, seed, i])
        if render is None:
            frames[i], masks[i] = make_video(dataset, int(label), rng, num_frames, size)
        else:
            frames[i], masks[i] = render(
                dataset, int(label), rng, np.random.default_rng([stream, seed, i, 1]), num_frames, size
            )
    return VideoSet(dataset, frames, masks, labels, list(spec.classes))


_X264_DETERMINISTIC = {"x264-params": "asm=avx2"} if torch.backends.cpu.get_cpu_capability() == "AVX512" else {}
"""x264's AVX-512 code reads memory it never wrote: one clip encoded twice came out different (measured, at sides
that are not multiples of 128 px). Where the CPU has AVX-512 it also has AVX2, whose code is deterministic."""


def write_mp4(frames: np.ndarray, target: str | Path | BinaryIO, fps: int = 8, crf: int = 18) -> str | Path | BinaryIO:
    """Write uint8 [T, H, W, 3] RGB as H.264 at quality `crf` (MPEG-4 part 2 if this PyAV lacks libx264), yuv420p,
    to a path or a binary file object; returns `target` (a path as a Path)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames [T>0, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p video needs an even height and width, got {height}x{width}")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    target = Path(target) if isinstance(target, str | Path) else target
    with av.open(str(target) if isinstance(target, Path) else target, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), **_X264_DETERMINISTIC}
        else:
            stream.bit_rate = 8_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return target


def write_samples(
    folder: str | Path, per_class: int = 1, seed: int = 0, num_frames: int = 16, size: int = 224, fps: int = 8
) -> list[Path]:
    """Sample clips `<dataset>_<class>_<k>.mp4` of the video datasets, for the app to offer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for dataset in ("motion", "appearance"):
        clips = generate(dataset, per_class * len(DATASETS[dataset].classes), seed, num_frames, size)
        for i, (frames, label) in enumerate(zip(clips.frames, clips.labels)):
            name = f"{dataset}_{clips.class_names[label]}_{i // len(clips.class_names)}.mp4"
            paths.append(write_mp4(frames, folder / name, fps))
    return paths
