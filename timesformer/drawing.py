"""How a generated scene is painted: shapes, fill patterns, textured backgrounds and anti-aliased objects.

`timesformer.datasets` decides what a clip shows (which object, how it moves); this module only paints it.
Coordinates are fractions of the frame, so any size shows the same scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

Polygon = tuple[np.ndarray, bool]  # vertices [N, 2] in units of the object's radius; drawn (True) or cut out


def _arc(start: float, stop: float, n: int = 40) -> np.ndarray:
    a = np.linspace(start, stop, n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _circle(radius: float = 1.0, centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    return np.asarray(centre) + radius * _arc(0, 2 * np.pi, 48)[:-1]


def _plus(half_width: float) -> np.ndarray:
    """A plus sign: arms of length 1 and the given half width."""
    w = half_width
    quarter = np.array([[w, 1], [w, w], [1, w]])
    turns = [quarter @ np.array([[c, -s], [s, c]]) for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1))]
    return np.vstack(turns)


def _star(points: int, inner: float, phase: float = -np.pi / 2) -> np.ndarray:
    """A regular polygon when `inner` is 1, a star below."""
    a = phase + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2, inner, 1.0)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _shape(*parts: Polygon) -> tuple[Polygon, ...]:
    """Scale a shape so its farthest drawn vertex sits at radius 1: `radius` then means its bounding circle."""
    reach = max(np.linalg.norm(v, axis=1).max() for v, drawn in parts if drawn)
    return tuple((v / reach, drawn) for v, drawn in parts)


SHAPES: dict[str, tuple[Polygon, ...]] = {
    "circle": _shape((_circle(), True)),
    "square": _shape((_star(2, 1.0, np.pi / 4), True)),
    "triangle": _shape((_star(3, 0.5), True)),
    "star": _shape((_star(5, 0.42), True)),
    "ring": _shape((_circle(), True), (_circle(0.55), False)),
    "cross": _shape((_plus(0.33), True)),
    "crescent": _shape((_circle(), True), (_circle(0.8, (0.4, 0.0)), False)),
    "arrow": _shape(
        (np.array([[-1, -0.2], [0.15, -0.2], [0.15, -0.55], [1, 0], [0.15, 0.55], [0.15, 0.2], [-1, 0.2]]), True)
    ),
    "ell": _shape((np.array([[-0.6, -1], [-0.1, -1], [-0.1, 0.5], [0.6, 0.5], [0.6, 1], [-0.6, 1]]), True)),
    "wedge": _shape((np.vstack([[0.0, 0.0], _arc(np.deg2rad(35), np.deg2rad(325))]), True)),  # a pac-man
    "bar": _shape((np.array([[-1, -0.2], [1, -0.2], [1, 0.2], [-1, 0.2]]), True)),
}
PATTERNS = ("solid", "stripes", "checker")


@dataclass(frozen=True)
class Look:
    """What an object looks like: a shape from SHAPES and a fill pattern drawn in the object's own frame."""

    shape: str
    pattern: str = "solid"


_STRIPES_PER_RADIUS = 2.5


@dataclass(frozen=True)
class Track:
    """Per-frame pose of one object: centre and radius in fractions of the frame, angle (rad), opacity."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    alpha: np.ndarray


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates [H, W], shared read-only between calls."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    xx.flags.writeable = yy.flags.writeable = False
    return xx, yy


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-contrast texture (gradient, stripes or blotches) around a random colour: float32 [H, W, 3]."""
    xx, yy = (g / size for g in _pixel_grid(size))
    kind, angle = rng.integers(3), rng.uniform(0, 2 * np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    if kind == 0:
        pattern = 2 * (along - along.min()) / (along.max() - along.min()) - 1
    elif kind == 1:
        pattern = np.sin(2 * np.pi * along / rng.uniform(0.08, 0.3) + rng.uniform(0, 2 * np.pi))
    else:
        blotches = rng.uniform(-1, 1, size=(5, 5)).astype(np.float32)
        pattern = np.clip(cv2.resize(blotches, (size, size), interpolation=cv2.INTER_CUBIC), -1, 1)
    colour, amplitude = rng.uniform(30, 225, size=3), rng.uniform(-45, 45, size=3)
    return (colour + pattern[..., None] * amplitude).astype(np.float32)


def contrasting(rng: np.random.Generator, avoid: Sequence[np.ndarray], candidates: int = 16) -> np.ndarray:
    """Of a few random colours, the one farthest from all of `avoid`: visible objects without a fixed palette."""
    colours = rng.uniform(0, 255, size=(candidates, 3))
    distance = np.min([np.linalg.norm(colours - a, axis=1) for a in avoid], axis=0)
    return colours[np.argmax(distance)].astype(np.float32)


def _coverage(shape: str, centre: np.ndarray, radius: float, angle: float, size: int) -> np.ndarray:
    """Anti-aliased coverage uint8 [H, W] of a shape, drawn again shifted by the frame size where it wraps."""
    canvas = np.zeros((size, size), np.uint8)
    c, s = np.cos(angle), np.sin(angle)
    rotate = np.array([[c, s], [-s, c]])  # row vectors: v @ rotate == R v, R turning x towards y (clockwise)
    shifts = [
        (dx, dy)
        for dx in (-size, 0, size)
        for dy in (-size, 0, size)
        if -radius - 1 < centre[0] + dx < size + radius and -radius - 1 < centre[1] + dy < size + radius
    ]
    for vertices, drawn in SHAPES[shape]:
        points = vertices @ rotate * radius + centre
        for shift in shifts:
            fixed = np.round((points + shift) * 16).astype(np.int32)  # 4 bits of sub-pixel precision
            cv2.fillPoly(canvas, [fixed], 255 if drawn else 0, lineType=cv2.LINE_AA, shift=4)
    return canvas


def _fill(
    pattern: str,
    colours: tuple[np.ndarray, np.ndarray],
    xx: np.ndarray,
    yy: np.ndarray,
    centre: np.ndarray,
    radius: float,
    angle: float,
    size: int,
) -> np.ndarray:
    """Object colour at pixels (xx, yy): solid [3], or stripes/checker [h, w, 3] that move and turn with it."""
    if pattern == "solid":
        return colours[0]
    dx, dy = ((g - c + size / 2) % size - size / 2 for g, c in zip((xx, yy), centre))  # wrap-aware offsets
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius * _STRIPES_PER_RADIUS
    v = (dy * np.cos(angle) - dx * np.sin(angle)) / radius * _STRIPES_PER_RADIUS
    bands = np.floor(u) if pattern == "stripes" else np.floor(u) + np.floor(v)
    return colours[0] + (colours[1] - colours[0]) * (bands % 2)[..., None]


def draw(frames: np.ndarray, look: Look, colours: tuple[np.ndarray, np.ndarray], track: Track) -> np.ndarray:
    """Composite an object onto float frames [T, H, W, 3] in place; returns where it covers half a pixel or more."""
    size = frames.shape[1]
    xx, yy = _pixel_grid(size)
    mask = np.empty(frames.shape[:3], bool)
    for i, frame in enumerate(frames):
        centre, radius = np.array([track.x[i], track.y[i]]) * size - 0.5, track.radius[i] * size
        canvas = _coverage(look.shape, centre, radius, track.angle[i], size)
        mask[i] = canvas > 127
        x, y, w, h = cv2.boundingRect(canvas)
        box = (slice(y, y + h), slice(x, x + w))  # only pixels the object touches: most of the cost otherwise
        fill = _fill(look.pattern, colours, xx[box], yy[box], centre, radius, track.angle[i], size)
        opacity = canvas[box].astype(np.float32) * (track.alpha[i] / 255)
        frame[box] += opacity[..., None] * (fill - frame[box])
    return mask
