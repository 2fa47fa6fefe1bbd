"""Heatmaps over video frames, exported as a frame-strip PNG, an animated GIF or an MP4; tables as CSV or JSON.

Everything here is RGB. The colour maps are OpenCV's (copies of matplotlib's inferno, viridis, ... and the
classic jet), read once into 256 x 3 lookup tables and flipped from OpenCV's BGR to RGB, which is the classic
place where overlays come out blue instead of red.

An exported picture travels without the page around it, so given a `Legend` it carries what the page says
beside it: what it shows (video, scheme, class), each frame's number and the colour bar of its heatmap.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def scale_heatmap(heat: np.ndarray, scaling: Scaling = "global") -> np.ndarray:
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

    The heatmap is min-max scaled (see `scale_heatmap`), upsampled to the frame size, and coloured by the colour
    map `cmap`.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"expected uint8 RGB frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    heat = scale_heatmap(heat, scaling)
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


# --- legends: what an exported picture says about itself ---

BACKGROUND = (14, 17, 23)
"""The app's page colour, behind the text and between the frames."""
TEXT = (230, 230, 230)
FONT_PX = 13
PAD = 6


@dataclass(frozen=True)
class Legend:
    """The words around exported frames: `title` lines (video, scheme, method and class), one label per frame
    (its number in the video) and the colour scale of the heatmap (`cmap`, what it measures)."""

    title: tuple[str, ...]
    frames: tuple[str, ...]
    cmap: str
    scale: str


@cache
def _font(size: int = FONT_PX) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


def _text_width(text: str) -> float:
    return _font().getlength(text)


def _text_band(lines: Sequence[str], width: int) -> np.ndarray:
    """Lines of text on the page colour, each wrapped to `width` px, [height, width, 3]."""
    chars = max(4, int((width - 2 * PAD) / max(_text_width("abcdefghij") / 10, 1)))
    wrapped = [part for line in lines for part in textwrap.wrap(line, chars) or [""]]
    step = FONT_PX + 4
    band = Image.new("RGB", (width, PAD + step * len(wrapped) + PAD // 2), BACKGROUND)
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(wrapped):
        draw.text((PAD, PAD + i * step), line, fill=TEXT, font=_font())
    return np.asarray(band)


def _colour_bar(cmap: str, scale: str, width: int) -> np.ndarray:
    """The heatmap's colour scale as a band [height, width, 3]: what it measures, then low -> high."""
    label = _text_band([scale], width)
    left, right = _text_width("low") + 2 * PAD, _text_width("high") + 2 * PAD
    span = max(int(width - left - right), 8)
    bar = Image.new("RGB", (width, FONT_PX + 2 * PAD), BACKGROUND)
    bar.paste(
        Image.fromarray(np.repeat(colormap(cmap)[None, np.linspace(0, 255, span).astype(int)], FONT_PX, 0)),
        (int(left), PAD),
    )
    draw = ImageDraw.Draw(bar)
    draw.text((PAD, PAD - 1), "low", fill=TEXT, font=_font())
    draw.text((int(left) + span + PAD, PAD - 1), "high", fill=TEXT, font=_font())
    return np.concatenate([label, np.asarray(bar)])


def _stack(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=0)


def _label_bands(labels: Sequence[str], width: int) -> list[np.ndarray]:
    """One text band per label, all as tall as the tallest (a long label wraps onto more lines)."""
    bands = [_text_band([label], width) for label in labels]
    height = max(band.shape[0] for band in bands)
    return [np.concatenate([band, np.full((height - band.shape[0], width, 3), BACKGROUND, np.uint8)]) for band in bands]


def labelled_frames(images: np.ndarray, legend: Legend) -> np.ndarray:
    """Every frame with the legend around it (title, its own label, colour bar): frames of a GIF or MP4."""
    images = _check_images(images)
    if len(legend.frames) != len(images):
        raise ValueError(f"{len(legend.frames)} frame labels for {len(images)} frames")
    width = images.shape[2]
    title, bar = _text_band(legend.title, width), _colour_bar(legend.cmap, legend.scale, width)
    return np.stack(
        [_stack(title, band, image, bar) for image, band in zip(images, _label_bands(legend.frames, width))]
    )


def labelled_strip(images: np.ndarray, legend: Legend, gap: int = 4) -> np.ndarray:
    """The frames side by side, each under its label, with the title above and the colour bar below: one image."""
    images = _check_images(images)
    if len(legend.frames) != len(images):
        raise ValueError(f"{len(legend.frames)} frame labels for {len(images)} frames")
    columns = [_stack(band, image) for image, band in zip(images, _label_bands(legend.frames, images.shape[2]))]
    spacer = np.full((columns[0].shape[0], gap, 3), BACKGROUND, np.uint8)
    row = np.concatenate([part for column in columns for part in (column, spacer)][:-1], axis=1)
    width = row.shape[1]
    return _stack(_text_band(legend.title, width), row, _colour_bar(legend.cmap, legend.scale, width))


# --- encodings ---


def strip_png(images: np.ndarray, legend: Legend | None = None) -> bytes:
    """The frames side by side, left to right in time, as one PNG [H, T * W]; with a legend around them."""
    images = _check_images(images)
    picture = labelled_strip(images, legend) if legend else np.concatenate(list(images), axis=1)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def gif(images: np.ndarray, fps: float = 4.0, legend: Legend | None = None) -> bytes:
    """An animated GIF that loops forever, each frame with the legend around it if given. GIF stores a
    256-colour palette per frame and durations in 10 ms steps; Pillow merges consecutive identical frames."""
    images = _check_images(images)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if legend:
        images = labelled_frames(images, legend)
    first, *rest = [Image.fromarray(image) for image in images]
    buffer = io.BytesIO()
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    return buffer.getvalue()


def mp4(images: np.ndarray, fps: int = 4, legend: Legend | None = None) -> bytes:
    """An MP4 (H.264, or MPEG-4 part 2 where this PyAV lacks libx264; yuv420p), odd sizes padded by one pixel;
    each frame with the legend around it if given."""
    images = _check_images(images)
    if fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    if legend:
        images = labelled_frames(images, legend)
    height, width = images.shape[1:3]
    images = np.pad(images, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory() as folder:
        return write_mp4(images, Path(folder) / "overlay.mp4", fps).read_bytes()


def table_csv(rows: Sequence[Mapping]) -> bytes:
    """Rows (dicts with the same keys, in order) as UTF-8 CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def table_json(data: object) -> bytes:
    """Anything made of dicts, lists, strings and numbers (numpy's included) as indented UTF-8 JSON."""
    return json.dumps(
        data, indent=1, default=lambda value: value.item() if hasattr(value, "item") else str(value), ensure_ascii=False
    ).encode()


def export_stem(*parts: str) -> str:
    """A file name without its suffix, from its parts: ("holiday.mp4", "divided_space_time", "rollout") ->
    "holiday-divided_space_time-rollout"; a video's extension is dropped and anything but letters, digits, "_"
    and "." becomes "-"."""
    stems = [re.sub(r"\.(mp4|avi|mov|webm|mkv)$", "", part, flags=re.IGNORECASE) for part in parts]
    return "-".join(
        slug for slug in (re.sub(r"[^\w.]+", "-", stem, flags=re.ASCII).strip("-.") for stem in stems) if slug
    )
