"""The generated datasets are deterministic, labelled honestly, and free of single-frame shortcuts.

The shortcut tests measure each frame's target attributes from its mask (circular centroid, size, orientation,
contrast, colours, shape moments) plus a coarse picture and colour histogram, and fit a linear probe. One frame
of `motion` must leave the probe at chance; two frames, or one frame of `appearance`, must not.
"""

import av
import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from timesformer import datasets as ds

SIZE = 48


@pytest.fixture(scope="module")
def motion() -> ds.VideoSet:
    return ds.generate("motion", 1000, seed=0, size=SIZE)


@pytest.fixture(scope="module")
def appearance() -> ds.VideoSet:
    return ds.generate("appearance", 600, seed=0, size=SIZE)


def _circular_mean(coords: np.ndarray, size: int) -> float:
    """Mean position on a circle of `size` pixels, as an angle: right even when the object wraps around."""
    a = 2 * np.pi * (coords + 0.5) / size
    return float(np.arctan2(np.sin(a).mean(), np.cos(a).mean()))


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _attributes(frame: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray | float]:
    """What one frame shows of its target, measured from the pixels under and around its mask."""
    size = mask.shape[-1]
    ys, xs = np.nonzero(mask)
    ax, ay = _circular_mean(xs, size), _circular_mean(ys, size)
    to_centre = (size // 2 - round(ay * size / (2 * np.pi)), size // 2 - round(ax * size / (2 * np.pi)))
    moments = cv2.moments(np.roll(mask, to_centre, axis=(0, 1)).astype(np.uint8), binaryImage=True)
    spread, skew = (moments["mu20"] - moments["mu02"]) / moments["m00"], 2 * moments["mu11"] / moments["m00"]
    hu = cv2.HuMoments(moments).ravel()
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
    inside, around = frame[mask].astype(float), frame[ring].astype(float)
    return {
        "x": ax,
        "y": ay,
        "log_area": np.log(mask.sum()),
        "orientation": np.arctan2(skew, spread),  # doubled angle, grows when the object turns clockwise
        "anisotropy": np.hypot(spread, skew) / ((moments["mu20"] + moments["mu02"]) / moments["m00"]),
        "contrast": np.linalg.norm(inside - around.mean(0), axis=1).mean() / 255,
        "background_spread": np.median(np.linalg.norm(around - around.mean(0), axis=1)) / 255,
        "object_distance": np.median(np.linalg.norm(inside - around.mean(0), axis=1)) / 255,
        "hu": np.sign(hu) * np.log10(np.abs(hu) + 1e-12),
        "colours": np.concatenate([inside.mean(0), inside.std(0), around.mean(0)]) / 255,
    }


STEPPED = ("x", "y", "log_area", "orientation", "contrast")  # the attributes a motion class drifts


def _steps(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """[T-1, len(STEPPED)] frame-to-frame changes, angles wrapped."""
    seen = [_attributes(f, m) for f, m in zip(frames, masks)]
    return np.array(
        [
            [_wrap(b[k] - a[k]) if k in ("x", "y", "orientation") else b[k] - a[k] for k in STEPPED]
            for a, b in zip(seen, seen[1:])
        ]
    )


def _single_frame(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    a = _attributes(frame, mask)
    picture = cv2.resize(frame, (4, 4), interpolation=cv2.INTER_AREA).ravel() / 255
    histogram = np.histogramdd(frame.reshape(-1, 3), bins=3, range=[(0, 256)] * 3)[0].ravel() / mask.size
    shape = [
        np.cos(a["x"]),
        np.sin(a["x"]),
        np.cos(a["y"]),
        np.sin(a["y"]),
        a["log_area"],
        a["anisotropy"],
        a["anisotropy"] * np.cos(a["orientation"]),
        a["anisotropy"] * np.sin(a["orientation"]),
        a["contrast"],
    ]
    return np.concatenate([shape, a["hu"], a["colours"], picture, histogram])


def _probe(features: np.ndarray, labels: np.ndarray, train: int) -> tuple[float, float]:
    """Held-out (accuracy, twin accuracy): the latter is how often the true class beats its twin (2k <-> 2k+1)."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(features[:train], labels[:train])
    p, y = clf.predict_proba(features[train:]), labels[train:]
    rows = np.arange(len(y))
    return float((p.argmax(1) == y).mean()), float((p[rows, y] > p[rows, y ^ 1]).mean())


# --- determinism, balance, masks -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_same_seed_same_bytes_other_seed_differs(name: str) -> None:
    a, b, c = (ds.generate(name, 12, seed, size=32) for seed in (7, 7, 8))
    assert a.frames.tobytes() == b.frames.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.frames, c.frames) and not np.array_equal(a.masks, c.masks)
    assert np.array_equal(ds.generate(name, 5, 7, size=32).frames, a.frames[:5])  # clip i depends on i alone


def test_a_subset_of_classes_keeps_the_dataset_numbering() -> None:
    flipped = ds.generate("motion", 4, seed=3, size=32, classes=["move_left", "move_right"])
    assert flipped.labels.tolist() == [1, 0, 1, 0] and flipped.class_names == ds.class_names("motion")
    pair = ds.generate("motion", 6, seed=3, size=32, classes=["move_right", "move_left"])
    full = ds.generate("motion", 2, seed=3, size=32)  # clips 0 and 1: move_right, move_left in both
    assert np.array_equal(pair.frames[:2], full.frames) and pair.labels.tolist() == [0, 1] * 3


def test_datasets_differ_for_one_seed() -> None:
    assert not np.array_equal(
        ds.generate("motion", 4, 0, size=32).frames, ds.generate("appearance", 4, 0, size=32).frames
    )


@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_every_class_generates_balanced_with_shapes_and_types(name: str) -> None:
    classes = ds.class_names(name)
    assert len(classes) >= 8 and len(set(classes)) == len(classes)
    v = ds.generate(name, 3 * len(classes), seed=1, size=32)
    frames = ds.DATASETS[name].num_frames
    assert v.frames.shape == (3 * len(classes), frames, 32, 32, 3) and v.frames.dtype == np.uint8
    assert v.masks.shape == v.frames.shape[:-1] and v.masks.dtype == bool
    assert v.labels.dtype == np.int64 and v.class_names == classes and len(v) == 3 * len(classes)
    assert np.bincount(v.labels, minlength=len(classes)).tolist() == [3] * len(classes)


@pytest.mark.parametrize("name", list(ds.DATASETS))
def test_masks_hold_a_visible_object(name: str) -> None:
    v = ds.generate(name, 100, seed=2, size=SIZE)
    area = v.masks.mean(axis=(2, 3))
    assert area.min() > 0.002 and area.max() < 0.5  # non-empty in every frame, never the whole frame
    if name != "motion":  # motion objects wrap around the edges by design; the others stay in view
        edges = v.masks[..., 0, :] | v.masks[..., -1, :] | v.masks[..., :, 0] | v.masks[..., :, -1]
        assert not edges.any()
    seen = [_attributes(f, m) for f, m in zip(v.frames.reshape(-1, SIZE, SIZE, 3), v.masks.reshape(-1, SIZE, SIZE))]
    ratio = np.array([a["object_distance"] / max(a["background_spread"], 1e-3) for a in seen])
    assert (ratio > 1.5).mean() > 0.95 and np.median(ratio) > 3  # object pixels stand out from their surroundings


def test_distractors_move_outside_the_mask() -> None:
    v = ds.generate("appearance", 40, seed=3, size=SIZE)
    target = np.stack([cv2.dilate(m.any(0).astype(np.uint8), np.ones((3, 3), np.uint8)) for m in v.masks]) > 0
    change = np.abs(v.frames[:, -1].astype(float) - v.frames[:, 0]).max(-1)  # sensor noise alone stays <= 10
    assert ((change > 60) & ~target).any(axis=(1, 2)).mean() >= 0.8  # slow drift: a few barely move


def test_the_motion_target_moves_more_than_the_distractors() -> None:
    """Bars drifting as fast as the target kept small ViTs at chance: the class must be the clip's main movement."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 8)
    bars = [ds._drift_track(rng, t, ds._DISTRACTOR_RADIUS, ds._DISTRACTOR_DRIFT) for _ in range(200)]
    assert max(max(abs(b.x[-1] - b.x[0]), abs(b.y[-1] - b.y[0])) for b in bars) <= ds._DISTRACTOR_DRIFT
    assert min(ds._DRIFT["x"]) > 3 * ds._DISTRACTOR_DRIFT


# --- time reversal and shortcuts -------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", range(len(ds.MOTION_CLASSES) // 2))
def test_twins_are_time_reversals(motion: ds.VideoSet, pair: int) -> None:
    forward, backward = 2 * pair, 2 * pair + 1
    assert ds.motion_twin(forward) == backward and ds.motion_twin(backward) == forward
    attribute = STEPPED.index(
        {"x": "x", "y": "y", "size": "log_area", "angle": "orientation", "alpha": "contrast"}[
            ds.MOTION_CLASSES[forward][1]
        ]
    )
    steps = {
        label: np.concatenate(
            [
                _steps(f, m)[:, attribute]
                for f, m, y in zip(motion.frames[:200], motion.masks[:200], motion.labels[:200])
                if y == label
            ]
        )
        for label in (forward, backward)
    }
    assert (steps[forward] > 0).mean() > 0.85 and (steps[backward] < 0).mean() > 0.85
    scale = np.median(np.abs(steps[forward]))
    assert abs(np.median(steps[forward]) + np.median(steps[backward])) < 0.25 * scale  # mirror images


def test_first_against_last_frame_misleads_where_the_attribute_wraps() -> None:
    """Every step of a drifting attribute goes the class's way but one at most: the wrap (a growing object pops
    back to its smallest size). So comparing the first frame with the last tells grow from shrink, or fade in from
    fade out, only in the clips that do not wrap (1 - the mean drift: 40%), where turns never wrap."""
    t, rng = np.linspace(0.0, 1.0, 8), np.random.default_rng(0)
    net_right = {}
    for label, (name, attribute, direction) in enumerate(ds.MOTION_CLASSES):
        nets = []
        for _ in range(2000):
            track = ds._motion_target(label, rng, t)[1]
            value = {
                "x": track.x,
                "y": track.y,
                "size": np.log(track.radius),
                "angle": track.angle,
                "alpha": track.alpha,
            }[attribute]
            steps = direction * np.diff(value)
            if attribute == "angle":  # a circle without a seam: the step is the short way round
                steps = (steps + np.pi) % (2 * np.pi) - np.pi
            assert (steps < 0).sum() <= 1
            nets.append(steps.sum() > 0)
        net_right[name] = np.mean(nets)
    assert net_right["rotate_cw"] == net_right["rotate_ccw"] == 1.0
    for name, attribute in (("grow", "size"), ("fade_in", "alpha")):
        assert net_right[name] == pytest.approx(1 - np.mean(ds._DRIFT[attribute]), abs=0.05)


def test_one_motion_frame_is_at_chance_two_frames_are_not(motion: ds.VideoSet) -> None:
    train, classes = 600, len(motion.class_names)
    for t in (0, -1):  # the first and last frames are where a biased start or end would show
        single = np.array([_single_frame(f[t], m[t]) for f, m in zip(motion.frames, motion.masks)])
        accuracy, twin_accuracy = _probe(single, motion.labels, train)
        assert accuracy < 1 / classes + 0.07 and twin_accuracy < 0.5 + 0.1, (t, accuracy, twin_accuracy)
    pairs = np.array(
        [
            np.concatenate([_single_frame(f[0], m[0]), _steps(f[:2], m[:2])[0]])
            for f, m in zip(motion.frames, motion.masks)
        ]
    )
    accuracy, twin_accuracy = _probe(pairs, motion.labels, train)
    assert accuracy > 0.4 and twin_accuracy > 0.7, (accuracy, twin_accuracy)


def test_one_appearance_frame_is_enough(appearance: ds.VideoSet) -> None:
    single = np.array([_single_frame(f[0], m[0]) for f, m in zip(appearance.frames, appearance.masks)])
    accuracy, _ = _probe(single, appearance.labels, 400)
    assert accuracy > 0.4, accuracy


# --- tensors, files, errors ------------------------------------------------------------------------------------


def test_mp4_round_trip(tmp_path) -> None:
    frames, _ = ds.make_video("appearance", 0, np.random.default_rng(0), num_frames=12, size=64)
    path = ds.write_mp4(frames, tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(float) - frames).mean() < 6
    other, _ = ds.make_video("appearance", 0, np.random.default_rng(1), num_frames=12, size=64)
    assert np.abs(decoded.astype(float) - other).mean() > 20  # the check can tell clips apart


def test_write_samples_names_every_class(tmp_path) -> None:
    paths = ds.write_samples(tmp_path, per_class=1, seed=0, num_frames=4, size=32)
    expected = {f"{name}_{c}_0.mp4" for name in ("motion", "appearance") for c in ds.class_names(name)}
    assert {p.name for p in paths} == expected and all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ds.class_names("ssv2"), "unknown dataset"),
        (lambda: ds.make_video("motion", 10, np.random.default_rng(0)), "label must be in"),
        (lambda: ds.make_video("motion", 0, np.random.default_rng(0), num_frames=1), "at least 2"),
        (lambda: ds.make_video("images", 0, np.random.default_rng(0), num_frames=8), "need 1 frame"),
        (lambda: ds.make_video("appearance", 0, np.random.default_rng(0), size=16), "at least 32"),
        (lambda: ds.generate("motion", 4, seed=-1), "non-negative"),
        (lambda: ds.generate("motion", 4, seed=0, classes=["move_right", "jump"]), "some of motion's"),
        (lambda: ds.generate("motion", 4, seed=0, classes=[]), "some of motion's"),
        (lambda: ds.motion_twin(10), "motion label"),
        (
            lambda: ds.concatenate(ds.generate("motion", 1, 0, size=32), ds.generate("images", 1, 0, size=32)),
            "different datasets: motion, images",
        ),
        (lambda: ds.write_mp4(np.zeros((2, 33, 32, 3), np.uint8), "x.mp4"), "even"),
        (lambda: ds.write_mp4(np.zeros((2, 32, 32), np.uint8), "x.mp4"), "expected uint8 frames"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
