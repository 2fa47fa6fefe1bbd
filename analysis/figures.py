"""Plotly figures for the app: pure functions from arrays to `go.Figure`, testable without streamlit.

Frames are drawn upscaled and tiled into one WebP image with transparent gaps (any page colour shows through)
on a pair of hidden axes, which keeps a figure of 8 frames small and quick to send and to draw.
Frame figures are built in one call without a template: they are redrawn on every rerun of a page.
Plotly fires no selection events on image traces, so a figure that takes clicks also carries a transparent
scatter marker on every patch centre with `customdata = [t, row, col]`; `clicked_patch` reads the patch back
from the selection event.

Colours: heatmaps use the colour maps of `analysis.exports` (the same tables as the PNG/GIF/MP4 exports), and
each attention stage has one colour everywhere (`STAGE_COLOURS`), the query patch blue as in the paper's Fig. 2.
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
from plotly.subplots import make_subplots

from analysis.exports import colormap, overlay
from timesformer.layout import Grid

DISPLAY_SIZE = 192
"""Pixels per frame side in composite images: the demo clips are 64 px, shown 3x."""
GAP = 8
TITLE_BAND = 22
"""Pixels above each frame for its title: a title drawn on the frame would hide the patches under it."""
FONT_COLOUR = "#e6e6e6"
QUERY_COLOUR = (66, 133, 244)
STAGE_COLOURS: dict[str, tuple[int, int, int]] = {
    "space": (228, 87, 86),
    "time": (84, 200, 75),
    "space_time": (245, 133, 24),
    "local": (114, 203, 208),
    "global": (200, 121, 200),
    "width": (238, 202, 59),
    "height": (228, 87, 86),
}
"""One colour per attention stage name, whichever scheme it belongs to."""
SERIES_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6")
CLASS_COLOURS = (
    "#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC",
    "#1F77B4", "#D62728",
)


class StageMap(NamedTuple):
    """What one query sees in one attention stage: its keys (bool [T, h, w]) and the weights on them."""

    name: str
    keys: np.ndarray
    weights: np.ndarray | None


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def colorscale(cmap: str, steps: int = 11) -> list[list]:
    """A plotly colour scale sampled from the exports' colour map table, so colour bars match the overlays.

    Colours are written rgb(r, g, b), not hex: Streamlit's chart frontend rewrites a few near-black hex values
    (#000001, #000002, ...) as theme colours, and inferno starts at #000004.
    """
    table = colormap(cmap)
    return [[i / (steps - 1), "rgb({}, {}, {})".format(*table[round(i * 255 / (steps - 1))])] for i in range(steps)]


AXES = dict(gridcolor="#33363d", zerolinecolor="#4a4d55", linecolor="#4a4d55", tickcolor="#4a4d55", automargin=True)


def styled(figure: go.Figure) -> go.Figure:
    """The app's dark look on a transparent background, so the page colour shows through.

    Spelled out instead of plotly's "plotly_dark" template, which costs about 35 ms per figure to apply and
    adds 6 kB to every figure sent; show figures with `st.plotly_chart(..., theme=None)` so Streamlit keeps it.
    """
    figure.update_layout(
        template="none", paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font=dict(color=FONT_COLOUR, size=13), colorway=list(SERIES_COLOURS), legend=dict(bgcolor="rgba(0,0,0,0)"),
        hoverlabel=dict(bgcolor="#262730", bordercolor="#4a4d55", font=dict(color=FONT_COLOUR)),
    )
    return figure.update_xaxes(**AXES).update_yaxes(**AXES)


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
) -> go.Figure:
    """Frames [T, H, W, 3] (already upscaled and coloured) in a grid; with `grid`, every patch is clickable.

    `values` [T, h, w], if given, is shown on hover beside each patch's position. `width` is the width the
    figure is expected to take on the page, which fixes its height (the aspect ratio is kept).
    """
    frame_height, frame_width = images.shape[1:3]
    band = TITLE_BAND if titles else 0
    tiling = tile(len(images), band + frame_height, frame_width, columns)
    origins = [(x, y + band) for x, y in tiling.origins]
    labels = [_label(x + frame_width / 2, y - 2, title, yanchor="bottom") for (x, y), title in zip(origins, titles)]
    markers = None if grid is None else patch_markers(origins, frame_width, frame_height, grid, values, value_name)
    return _picture(images, origins, (tiling.width, tiling.height), width, labels, markers)


def patch_markers(
    origins: Sequence[tuple[int, int]],
    frame_width: int,
    frame_height: int,
    grid: Grid,
    values: np.ndarray | None = None,
    value_name: str = "value",
) -> go.Scatter:
    """Invisible scatter markers on the patch centres of every frame, `customdata = [t, row, col(, value)]`."""
    if len(origins) != grid.t:
        raise ValueError(f"{len(origins)} frames shown for a grid of {grid.t} frames")
    t, row, col = (axis.ravel() for axis in np.meshgrid(
        np.arange(grid.t), np.arange(grid.h), np.arange(grid.w), indexing="ij"))
    offsets = np.asarray(origins)[t]
    x = offsets[:, 0] + (col + 0.5) * frame_width / grid.w
    y = offsets[:, 1] + (row + 0.5) * frame_height / grid.h
    columns = [t, row, col]
    template = "frame %{customdata[0]} · row %{customdata[1]} · column %{customdata[2]}"
    if values is not None:
        columns.append(np.asarray(values, dtype=float).reshape(-1))
        template += f"<br>{value_name} %{{customdata[3]:.3g}}"
    # Small markers: plotly picks the point whose marker edge is nearest, so big ones would tie across patches.
    marker = dict(size=3, color="rgba(0,0,0,0)", line=dict(width=0))
    return go.Scatter(
        x=x, y=y, mode="markers", marker=marker, customdata=np.stack(columns, axis=1),
        hovertemplate=template + "<extra></extra>",
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)), name="patches",
    )


def clicked_patch(points: Sequence[Mapping]) -> tuple[int, int, int] | None:
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


def query_images(
    frames: np.ndarray, stages: Sequence[StageMap], query: tuple[int, int, int], dim: float = 0.3
) -> np.ndarray:
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
        colour = np.array(STAGE_COLOURS.get(stage.name, (255, 255, 255)), np.float32)
        scale, offset = (1 - alpha) * scale, (1 - alpha) * offset + alpha * colour
    t, row, col = query
    scale[t, row, col] *= 0.35
    offset[t, row, col] = 0.35 * offset[t, row, col] + 0.65 * np.array(QUERY_COLOUR, np.float32)
    image = frames * _upsample(scale, height, width) + _upsample(offset, height, width)
    top, left = row * height // rows, col * width // cols
    bottom, right = (row + 1) * height // rows, (col + 1) * width // cols
    border = max(2, (bottom - top) // 8)
    image[t, top:bottom, left:right][[*range(border), *range(-border, 0)]] = 255
    image[t, top:bottom, left:right][:, [*range(border), *range(-border, 0)]] = 255
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def heat_images(
    frames: np.ndarray, heat: np.ndarray, cmap: str = "inferno", opacity: float = 0.55, scaling: str = "global"
) -> np.ndarray:
    """Heatmaps [T, h, w] over display frames [T, H, W, 3], smoothly upsampled (see `analysis.exports.overlay`)."""
    return overlay(frames, heat, cmap=cmap, opacity=opacity, scaling=scaling, interpolation="bilinear")


def colour_bar(cmap: str, title: str, low: str = "low", high: str = "high", height: int = 60) -> go.Figure:
    """A slim horizontal colour bar for the heatmaps above it (their scale is relative, so low .. high)."""
    figure = go.Figure(go.Heatmap(
        z=[np.linspace(0, 1, 256)], colorscale=colorscale(cmap), showscale=False, hoverinfo="skip",
    ))
    figure.update_layout(
        height=height, margin=dict(l=60, r=60, t=22, b=4),
        title=dict(text=title, font=dict(size=12, color=FONT_COLOUR), x=0.5, y=0.98),
        xaxis=dict(visible=False, fixedrange=True), yaxis=dict(visible=False, fixedrange=True),
    )
    for x, text, anchor in ((0, low, "right"), (255, high, "left")):
        figure.add_annotation(x=x, y=0, text=text, showarrow=False, xanchor=anchor, xshift=-6 if x == 0 else 6,
                              font=dict(color=FONT_COLOUR, size=11))
    return styled(figure)


def prediction_figure(predictions: Mapping[str, Sequence[tuple[str, float]]], truth: str | None = None) -> go.Figure:
    """Horizontal bars of class probabilities, one colour per series (e.g. centre crop vs 3-crop average).

    Classes are ordered by the first series, most probable on top; the true class, if known, is marked ✓.
    """
    first = list(next(iter(predictions.values()), []))
    labels = [label for label, _ in first]
    for series in predictions.values():
        labels += [label for label, _ in series if label not in labels]
    names = [f"✓ {label}" if label == truth else label for label in labels]
    figure = go.Figure()
    for (series, top), colour in zip(predictions.items(), SERIES_COLOURS):
        probability = dict(top)
        values = [probability.get(label) for label in labels]
        figure.add_trace(go.Bar(
            y=names, x=[100 * v if v is not None else None for v in values], orientation="h", name=series,
            marker_color=colour, text=[f"{100 * v:.1f}%" if v is not None else "" for v in values],
            textposition="outside", cliponaxis=False, hovertemplate="%{y}: %{x:.1f}%<extra>" + series + "</extra>",
        ))
    figure.update_layout(
        barmode="group", height=110 + 44 * len(labels), margin=dict(l=10, r=50, t=40, b=40),
        xaxis=dict(title="probability (%)", range=[0, 108], fixedrange=True),
        yaxis=dict(autorange="reversed", fixedrange=True),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    )
    return styled(figure)


def grid_figure(
    images: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str], width: int = 900,
    label_width: int = 110, label_height: int = 26,
) -> go.Figure:
    """Small multiples [rows, cols, H, W, 3] with labelled rows and columns (e.g. layers x heads).

    The labels sit inside the axes' range, in room left of and above the images: plotly drops annotations
    placed outside the range.
    """
    rows, cols, height, frame_width = images.shape[:4]
    tiling = tile(rows * cols, height, frame_width, cols)
    origins = [(x + label_width, y + label_height) for x, y in tiling.origins]
    labels = [_label(origins[i][0] + frame_width / 2, origins[i][1] - 4, text, yanchor="bottom")
              for i, text in enumerate(column_labels)]
    labels += [_label(origins[i * cols][0] - 8, origins[i * cols][1] + height / 2, text, xanchor="right",
                      align="right") for i, text in enumerate(row_labels)]
    size = (label_width + tiling.width, label_height + tiling.height)
    return _picture(images.reshape(rows * cols, *images.shape[2:]), origins, size, width, labels)


def temporal_figure(shares: np.ndarray, row_labels: Sequence[str], cmap: str = "inferno") -> go.Figure:
    """Where a query's attention goes in time: shares [rows, T] (each row sums to at most 1), as % per frame."""
    shares = 100 * np.asarray(shares, dtype=float)
    frames = [f"t={t}" for t in range(shares.shape[1])]
    figure = go.Figure(go.Heatmap(
        z=shares, x=frames, y=list(row_labels), colorscale=colorscale(cmap), zmin=0, zmax=100,
        text=np.vectorize(lambda v: f"{v:.0f}")(shares), texttemplate="%{text}", textfont=dict(size=11),
        colorbar=dict(title=dict(text="% of the<br>query's<br>attention"), thickness=12),
        hovertemplate="%{y}, %{x}: %{z:.1f}%<extra></extra>",
    ))
    figure.update_layout(
        height=80 + 28 * len(row_labels), margin=dict(l=10, r=10, t=10, b=30),
        yaxis=dict(autorange="reversed", fixedrange=True), xaxis=dict(fixedrange=True, side="top"),
    )
    return styled(figure)


def class_colour(label: int) -> str:
    return CLASS_COLOURS[label % len(CLASS_COLOURS)]


def tsne_figure(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    extra: tuple[float, float, str] | None = None,
    height: int = 460,
    legend: bool = True,
    hover: Sequence[str] | None = None,
) -> go.Figure:
    """2-D t-SNE map coloured by class (`class_colour`); `customdata` is each clip's index; `extra` (x, y, name)
    is drawn as a star; `hover` is a line per point shown under its class (e.g. a file name), else "clip i"."""
    figure = go.Figure()
    labels = np.asarray(labels)
    for label, name in enumerate(class_names):
        index = np.flatnonzero(labels == label)
        if len(index) == 0:
            continue
        text = [f"clip {i}" for i in index] if hover is None else [hover[i] for i in index]
        figure.add_trace(go.Scatter(
            x=points[index, 0], y=points[index, 1], mode="markers", name=name, customdata=index.tolist(), text=text,
            marker=dict(size=9, color=class_colour(label), line=dict(width=0.5, color="#111")),
            hovertemplate=f"<b>{name}</b><br>%{{text}}<extra></extra>",
        ))
    if extra is not None:
        x, y, name = extra
        figure.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", name=name, text=[name], textposition="top center",
            marker=dict(symbol="star", size=22, color="white", line=dict(width=2, color="#ff7f0e")),
            textfont=dict(color="white"), hovertemplate=f"<b>{name}</b><extra></extra>",
        ))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
        legend=dict(font=dict(size=11), itemsizing="constant"), showlegend=legend, dragmode="pan",
    )
    return styled(figure)


def comparison_figure(
    categories: Sequence[str],
    left: Mapping[str, Sequence[float | None]],
    right: Mapping[str, Sequence[float | None]],
    titles: tuple[str, str],
    y_title: str = "top-1 accuracy (%)",
    right_errors: Mapping[str, Sequence[float | None]] | None = None,
) -> go.Figure:
    """Two bar panels over the same categories, e.g. the paper's numbers (left) beside ours (right).

    The panels keep their own y axes: the paper's Kinetics accuracy and ours on generated data are different
    quantities, compared by their pattern across categories, not bar against bar. The i-th series of each
    panel share a colour (e.g. SSv2 and its stand-in, motion).
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.08)
    for column, (panel, errors) in enumerate(((left, None), (right, right_errors)), start=1):
        for index, (series, values) in enumerate(panel.items()):
            error = None if errors is None or series not in errors else errors[series]
            figure.add_trace(go.Bar(
                x=list(categories), y=list(values), name=series, legendgroup=series, showlegend=column == 1 or
                series not in left, marker_color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
                marker_pattern_shape="" if column == 1 else "/",
                error_y=None if error is None else dict(type="data", array=list(error), visible=True),
                text=[f"{v:.1f}" if v is not None else "" for v in values], textposition="outside",
                cliponaxis=False,
            ), row=1, col=column)
        figure.update_yaxes(title_text=y_title if column == 1 else None, rangemode="tozero", row=1, col=column)
    figure.update_layout(
        barmode="group", height=380, margin=dict(l=60, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.15),
    )
    return styled(figure)


def cost_figure(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    x_title: str,
    y_title: str,
    limit: tuple[float, str] | None = None,
    log_y: bool = True,
) -> go.Figure:
    """Cost curves (the paper's Fig. 3): one line per scheme; `limit` (value, label) draws a dashed budget line
    and marks the points above it with ✕."""
    figure = go.Figure()
    for index, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        figure.add_trace(go.Scatter(x=list(x), y=list(values), mode="lines+markers", name=name,
                                    line=dict(color=colour, width=3), marker=dict(size=9)))
        if limit is not None:
            over = [i for i, value in enumerate(values) if value > limit[0]]
            if over:
                figure.add_trace(go.Scatter(
                    x=[x[i] for i in over], y=[values[i] for i in over], mode="markers", name=f"{name}: over budget",
                    marker=dict(symbol="x", size=16, color="#ff4b4b", line=dict(width=2)), showlegend=False,
                    hovertemplate=f"{name}: %{{y:.3g}}, over {limit[1]}<extra></extra>",
                ))
    if limit is not None:
        figure.add_hline(y=limit[0], line=dict(color="#ff4b4b", dash="dash"), annotation_text=limit[1],
                         annotation_position="top left", annotation_font_color="#ff4b4b")
    y_axis = dict(title=y_title, type="log" if log_y else "linear")
    if log_y:  # an explicit range: plotly's autorange on log axes goes wild with a horizontal line
        values = [v for vs in series.values() for v in vs if v > 0] + ([limit[0]] if limit else [])
        y_axis |= dict(range=[np.log10(min(values) / 1.5), np.log10(max(values) * 1.5)], dtick="D2")
    figure.update_layout(
        height=340, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title=x_title, tickvals=list(x)), yaxis=y_axis,
        legend=dict(orientation="h", y=-0.25),
    )
    return styled(figure)
