"""Heatmaps over video frames, exported as a frame-strip PNG, an animated GIF or an MP4.

Everything here is RGB. The colour maps are OpenCV's (copies of matplotlib's inferno, viridis, ... and the
classic jet), read once into 256 x 3 lookup tables and flipped from OpenCV's BGR to RGB, which is the classic
place where overlays come out blue instead of red.
"""

from __future__ import annotations

import io
import tempfile
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from timesformer.datasets import write_mp4

COLORMAPS = {
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET,
    "hot": cv2.COLORMAP_HOT,
}
"""Colour map names (matplotlib's spelling) and the OpenCV map each is read from."""

INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}

Scaling = Literal["global", "frame"]


@cache
def colormap(name: str) -> np.ndarray:
    """The colour map `name` as a uint8 RGB lookup table [256, 3]: entry i is the colour of value i / 255."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; known: {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    table = np.ascontiguousarray(cv2.applyColorMap(ramp, COLORMAPS[name])[:, 0, ::-1])  # BGR -> RGB
    table.flags.writeable = False
    return table


def normalise(heat: np.ndarray, scaling: Scaling = "global") -> np.ndarray:
    """Min-max scale [T, h, w] to [0, 1], over the whole clip ("global") or each frame alone ("frame").

    Global scaling keeps frames comparable (where in time the model looks); per-frame scaling shows where
    it looks within each frame even when that frame gets little attention. A constant map becomes zeros.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 3 or 0 in heat.shape:
        raise ValueError(f"expected a heatmap [T, h, w], got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("the heatmap contains NaN or infinite values")
    if scaling not in ("global", "frame"):
        raise ValueError(f"scaling must be 'global' or 'frame', not {scaling!r}")
    axes = (0, 1, 2) if scaling == "global" else (1, 2)
    low, high = heat.min(axis=axes, keepdims=True), heat.max(axis=axes, keepdims=True)
    span = high - low
    return np.divide(heat - low, span, out=np.zeros_like(heat), where=span > 0)


def overlay(
    frames: np.ndarray,
    heat: np.ndarray,
    cmap: str = "inferno",
    opacity: float = 0.5,
    scaling: Scaling = "global",
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Blend coloured heatmaps [T, h, w] onto RGB frames uint8 [T, H, W, 3]: (1 - opacity) frame + opacity colour.

    The heatmap is normalised (see `normalise`), upsampled to the frame size, and coloured by the colour map `cmap`.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"expected uint8 RGB frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    heat = normalise(heat, scaling)
    if len(heat) != len(frames):
        raise ValueError(f"{len(heat)} heatmaps for {len(frames)} frames")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}")
    table = colormap(cmap)
    height, width = frames.shape[1:3]
    upsampled = np.stack(
        [cv2.resize(h.astype(np.float32), (width, height), interpolation=INTERPOLATIONS[interpolation]) for h in heat]
    )
    colours = table[np.rint(np.clip(upsampled, 0.0, 1.0) * 255).astype(np.uint8)]  # bicubic overshoots: clip
    blended = (1.0 - opacity) * frames + opacity * colours.astype(np.float32)
    return np.rint(blended).astype(np.uint8)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape:
        raise ValueError(f"expected uint8 RGB images [T, H, W, 3], got {images.dtype} {images.shape}")
    return images


def strip_png(images: np.ndarray) -> bytes:
    """The frames side by side, left to right in time, as one PNG [H, T * W]."""
    images = _check_images(images)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(list(images), axis=1)).save(buffer, format="PNG")
    return buffer.getvalue()


def gif(images: np.ndarray, fps: float = 4.0) -> bytes:
    """An animated GIF that loops forever. GIF stores a 256-colour palette per frame and durations in 10 ms steps;
    Pillow merges consecutive identical frames into one longer frame."""
    images = _check_images(images)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    first, *rest = [Image.fromarray(image) for image in images]
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    return buffer.getvalue()


def mp4(images: np.ndarray, fps: int = 4) -> bytes:
    """An MP4 (H.264, or MPEG-4 part 2 where this PyAV lacks libx264; yuv420p), odd sizes padded by one pixel."""
    images = _check_images(images)
    if fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    height, width = images.shape[1:3]
    images = np.pad(images, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory() as folder:
        return write_mp4(images, Path(folder) / "overlay.mp4", fps).read_bytes()
