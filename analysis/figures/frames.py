"""Video frames as pictures: tiled into one image, with heatmaps or a query's attention drawn over them.

Frames are drawn upscaled and tiled into one WebP image with transparent gaps (any page colour shows through)
on a pair of hidden axes, which keeps a figure of 8 frames small and quick to send and to draw. Frame figures
are built in one call without a template: they are redrawn on every rerun of a page.
Plotly fires no selection events on image traces, so a figure that takes clicks also carries a transparent
scatter marker on every patch centre with `customdata = [t, row, col]`; `clicked_patch` reads the patch back
from the selection event. Wherever a view follows a query patch, the patch is outlined in the query's blue.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import plotly.graph_objects as go
from PIL import Image

from analysis.exports import overlay
from analysis.figures.style import FONT_COLOUR, QUERY_COLOUR, stage_colour
from timesformer.layout import Grid

DISPLAY_SIZE = 192
"""Pixels per frame side in composite images: the demo clips are 64 px, shown 3x."""
GAP = 8
TITLE_BAND = 22
"""Pixels above each frame for its title: a title drawn on the frame would hide the patches under it."""
LABEL_CHAR_PX = 7.5
"""About how wide one character of a 12 px label is on screen, to leave room for row labels."""

Patch = tuple[int, int, int]
"""(t, row, col) of a patch."""


class StageMap(NamedTuple):
    """What one query sees in one attention stage: its keys (bool [T, h, w]) and the weights on them."""

    name: str
    keys: np.ndarray
    weights: np.ndarray | None


def upscale(frames: np.ndarray, size: int = DISPLAY_SIZE, smooth: bool = True) -> np.ndarray:
    """uint8 [T, H, W, 3] -> [T, size * H / W, size, 3]; cubic for photos, nearest to keep patch blocks sharp."""
    frames = np.asarray(frames)
    height = round(size * frames.shape[1] / frames.shape[2])
    interpolation = cv2.INTER_CUBIC if smooth else cv2.INTER_NEAREST
    return np.stack([cv2.resize(frame, (size, height), interpolation=interpolation) for frame in frames])


@dataclass(frozen=True)
class Tiling:
    """Where tiles of `height` x `width` px go in a grid: top-left corners and the size of the whole grid."""

    origins: list[tuple[int, int]]
    width: int
    height: int


def tile(count: int, height: int, width: int, columns: int, gap: int = GAP) -> Tiling:
    """`count` tiles in a grid of `columns`, left to right then top to bottom."""
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    origins = [((i % columns) * (width + gap), (i // columns) * (height + gap)) for i in range(count)]
    return Tiling(origins, columns * width + (columns - 1) * gap, rows * height + (rows - 1) * gap)


def image_uri(image: np.ndarray, quality: int = 85) -> str:
    """A WebP data URI of an RGB or RGBA uint8 image: lossy yet with alpha, smaller than JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", quality=quality, method=2)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode()


def _label(x: float, y: float, text: str, **placement) -> dict:
    return dict(x=x, y=y, text=text, showarrow=False, font=dict(color=FONT_COLOUR, size=12), **placement)


def _picture(
    images: np.ndarray,
    origins: Sequence[tuple[int, int]],
    size: tuple[int, int],
    width: int,
    labels: Sequence[dict] = (),
    markers: go.Scatter | None = None,
) -> go.Figure:
    """Images placed at pixel `origins` on hidden axes of `size` (w, h) px, square pixels, no zoom: a picture
    that takes clicks. The images go into one transparent canvas, one image trace: a browser draws one picture
    faster than eight. Built in one go (no template): this runs for every frame figure on every rerun."""
    canvas = np.zeros((size[1], size[0], 4), np.uint8)
    height, width_px = images.shape[1:3]
    for image, (x, y) in zip(images, origins):
        canvas[y : y + height, x : x + width_px, :3] = image
        canvas[y : y + height, x : x + width_px, 3] = 255
    traces = [go.Image(source=image_uri(canvas), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip")]
    layout = dict(
        template="none",
        height=round(width * size[1] / size[0]),
        margin=dict(l=0, r=0, t=0, b=0),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        dragmode=False,
        hovermode="closest",
        showlegend=False,
        annotations=list(labels),
        xaxis=dict(visible=False, range=[0, size[0]], fixedrange=True, constrain="domain"),
        yaxis=dict(visible=False, range=[size[1], 0], fixedrange=True, scaleanchor="x", constrain="domain"),
    )
    return go.Figure(data=traces + ([markers] if markers is not None else []), layout=layout)


def frame_figure(
    images: np.ndarray,
    titles: Sequence[str] = (),
    columns: int = 8,
    grid: Grid | None = None,
    values: np.ndarray | None = None,
    value_name: str = "value",
    width: int = 1100,
    frames: Sequence[int] | None = None,
) -> go.Figure:
    """Frames [T, H, W, 3] (already upscaled and coloured) in a grid; with `grid`, every patch is clickable.

    `values` [T, h, w], if given, is shown on hover beside each patch's position. `width` is the width the
    figure is expected to take on the page, which fixes its height (the aspect ratio is kept). `frames` numbers
    the frames shown (their t in the clip) when they are not all of them, e.g. one frame enlarged.
    """
    frame_height, frame_width = images.shape[1:3]
    band = TITLE_BAND if titles else 0
    tiling = tile(len(images), band + frame_height, frame_width, columns)
    origins = [(x, y + band) for x, y in tiling.origins]
    labels = [_label(x + frame_width / 2, y - 2, title, yanchor="bottom") for (x, y), title in zip(origins, titles)]
    markers = None
    if grid is not None:
        markers = patch_markers(origins, frame_width, frame_height, grid, values, value_name, frames)
    return _picture(images, origins, (tiling.width, tiling.height), width, labels, markers)


def patch_markers(
    origins: Sequence[tuple[int, int]],
    frame_width: int,
    frame_height: int,
    grid: Grid,
    values: np.ndarray | None = None,
    value_name: str = "value",
    frames: Sequence[int] | None = None,
) -> go.Scatter:
    """Invisible scatter markers on the patch centres of every frame, `customdata = [t, row, col(, value)]`.

    `frames` are the clip's frame numbers of the frames shown (all of them, in order, when None).
    """
    frames = np.arange(grid.t) if frames is None else np.asarray(frames)
    if len(origins) != len(frames):
        raise ValueError(f"{len(origins)} frames shown for {len(frames)} frame numbers")
    shown, row, col = (
        axis.ravel()
        for axis in np.meshgrid(np.arange(len(frames)), np.arange(grid.h), np.arange(grid.w), indexing="ij")
    )
    offsets = np.asarray(origins)[shown]
    x = offsets[:, 0] + (col + 0.5) * frame_width / grid.w
    y = offsets[:, 1] + (row + 0.5) * frame_height / grid.h
    columns = [frames[shown], row, col]
    template = "frame %{customdata[0]} · row %{customdata[1]} · column %{customdata[2]}"
    if values is not None:
        columns.append(np.asarray(values, dtype=float)[frames].reshape(-1))
        template += f"<br>{value_name} %{{customdata[3]:.3g}}"
    # Small markers: plotly picks the point whose marker edge is nearest, so big ones would tie across patches.
    marker = dict(size=3, color="rgba(0,0,0,0)", line=dict(width=0))
    return go.Scatter(
        x=x,
        y=y,
        mode="markers",
        marker=marker,
        customdata=np.stack(columns, axis=1),
        hovertemplate=template + "<extra></extra>",
        selected=dict(marker=dict(opacity=0)),
        unselected=dict(marker=dict(opacity=0)),
        name="patches",
    )


def clicked_patch(points: Sequence[Mapping]) -> Patch | None:
    """The (t, row, col) of the last clicked patch marker in a plotly selection event, or None.

    A point's customdata arrives as a list, or as {"0": t, "1": row, ...} when plotly.js held it as a typed
    array; anything else (a point of another trace, a malformed event) is not a patch.
    """
    for point in reversed(list(points)):
        data = point.get("customdata")
        if isinstance(data, Mapping):
            data = [data.get(str(i)) for i in range(3)]
        if isinstance(data, Sequence) and len(data) >= 3 and all(isinstance(v, (int, float)) for v in data[:3]):
            return int(data[0]), int(data[1]), int(data[2])
    return None


def _upsample(per_patch: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T, h, w, C] -> [T, height, width, C] by repeating each patch's value over its pixels."""
    rows, cols = per_patch.shape[1:3]
    return np.repeat(np.repeat(per_patch, height // rows, axis=1), width // cols, axis=2)


def _outline(
    image: np.ndarray, rows: int, cols: int, row: int, col: int, colour: Sequence[int], inset: int = 0
) -> None:
    """Draw a border (in place) around patch (row, col) of one frame [H, W, 3] cut into rows x cols patches,
    `inset` border widths inside the patch's edge."""
    height, width = image.shape[:2]
    top, left = row * height // rows, col * width // cols
    bottom, right = (row + 1) * height // rows, (col + 1) * width // cols
    border = max(1, min(4, (bottom - top) // 10))
    box = image[top + inset * border : bottom - inset * border, left + inset * border : right - inset * border]
    box[[*range(border), *range(-border, 0)]] = colour
    box[:, [*range(border), *range(-border, 0)]] = colour


def mark_patch(
    images: np.ndarray, rows: int, cols: int, row: int, col: int, frames: Sequence[int] | None = None
) -> np.ndarray:
    """A copy of frames [T, H, W, 3] cut into rows x cols patches with patch (row, col) outlined in `frames`
    (every frame when None): white, and the query's blue inside it, so that it shows on any heatmap."""
    marked = np.array(images, copy=True)
    for t in range(len(marked)) if frames is None else frames:
        _outline(marked[t], rows, cols, row, col, (255, 255, 255))
        _outline(marked[t], rows, cols, row, col, QUERY_COLOUR, inset=1)
    return marked


def query_images(frames: np.ndarray, stages: Sequence[StageMap], query: Patch, dim: float = 0.3) -> np.ndarray:
    """The paper's Fig. 2 drawn from real attention: frames [T, H, W, 3] (H, W multiples of the patch grid).

    Patches outside every stage's keys are dimmed to `dim` brightness (the query never compares with them);
    the keys of each stage are tinted in the stage's colour, more strongly the more weight the query gives
    them (scaled to the stage's largest weight; half-strength everywhere when `weights` is None); the query
    patch is blue with a white border. Every tint is uniform over a patch, so the blend is worked out per
    patch as pixel = scale * frame + offset and only then spread over the pixels.
    """
    frames = np.asarray(frames, dtype=np.float32)
    height, width = frames.shape[1:3]
    rows, cols = stages[0].keys.shape[1:] if stages else (1, 1)
    used = np.zeros(frames.shape[:1] + (rows, cols), bool)
    for stage in stages:
        used |= stage.keys
    scale = np.where(used, 0.75, dim)[..., None].astype(np.float32)  # [T, h, w, 1]
    offset = np.zeros(used.shape + (3,), np.float32)
    for stage in stages:
        if stage.weights is None:
            strength = np.where(stage.keys, 0.5, 0.0)
        else:
            weights = np.where(stage.keys, stage.weights, 0.0)
            peak = float(weights.max())
            strength = np.where(stage.keys, 0.15 + 0.7 * weights / peak if peak > 0 else 0.15, 0.0)
        alpha = strength[..., None].astype(np.float32)
        colour = np.array(stage_colour(stage.name), np.float32)
        scale, offset = (1 - alpha) * scale, (1 - alpha) * offset + alpha * colour
    t, row, col = query
    scale[t, row, col] *= 0.2
    offset[t, row, col] = 0.2 * offset[t, row, col] + 0.8 * np.array(QUERY_COLOUR, np.float32)
    image = np.clip(np.rint(frames * _upsample(scale, height, width) + _upsample(offset, height, width)), 0, 255)
    image = image.astype(np.uint8)
    _outline(image[t], rows, cols, row, col, (255, 255, 255))
    return image


def heat_images(
    frames: np.ndarray, heat: np.ndarray, cmap: str = "inferno", opacity: float = 0.55, scaling: str = "global"
) -> np.ndarray:
    """Heatmaps [T, h, w] over display frames [T, H, W, 3], smoothly upsampled (see `analysis.exports.overlay`)."""
    return overlay(frames, heat, cmap=cmap, opacity=opacity, scaling=scaling, interpolation="bilinear")


def label_room(labels: Sequence[str], tiles_width: int, width: int) -> tuple[int, float]:
    """(image pixels to leave left of tiles `tiles_width` px wide, image pixels per screen pixel) so that
    `labels` (lines split by <br>) fit when the whole picture is shown `width` screen px wide."""
    needed = max((len(line) for label in labels for line in label.split("<br>")), default=0) * LABEL_CHAR_PX + 16
    per_screen_px = tiles_width / max(width - needed, 1)
    return int(np.ceil(needed * per_screen_px)), per_screen_px


def grid_figure(
    images: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    width: int = 900,
    label_height: int = 26,
) -> go.Figure:
    """Small multiples [rows, cols, H, W, 3] with labelled rows and columns (e.g. layers x heads).

    The labels sit inside the axes' range, in room left of and above the images (plotly drops annotations
    placed outside the range), wide enough for the longest row label at the figure's `width`.
    """
    rows, cols, height, frame_width = images.shape[:4]
    tiling = tile(rows * cols, height, frame_width, cols)
    label_width, per_screen_px = label_room(row_labels, tiling.width, width)
    origins = [(x + label_width, y + label_height) for x, y in tiling.origins]
    labels = [
        _label(origins[i][0] + frame_width / 2, origins[i][1] - 4, text, yanchor="bottom")
        for i, text in enumerate(column_labels)
    ]
    labels += [
        _label(
            origins[i * cols][0] - 8 * per_screen_px,
            origins[i * cols][1] + height / 2,
            text,
            xanchor="right",
            align="right",
        )
        for i, text in enumerate(row_labels)
    ]
    size = (label_width + tiling.width, label_height + tiling.height)
    return _picture(images.reshape(rows * cols, *images.shape[2:]), origins, size, width, labels)
