"""Plots of numbers: predictions, where attention goes in time, t-SNE maps, the tables' bars, cost curves and
the frames a model reads on the timeline of a video. Each is styled by `analysis.figures.style.styled`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures.style import FONT_COLOUR, SERIES_COLOURS, class_colour, colorscale, series_colour, styled


def colour_bar(cmap: str, title: str, low: str = "low", high: str = "high", height: int = 60) -> go.Figure:
    """A slim horizontal colour bar for the heatmaps above it (their scale is relative, so low .. high)."""
    figure = go.Figure(
        go.Heatmap(
            z=[np.linspace(0, 1, 256)],
            colorscale=colorscale(cmap),
            showscale=False,
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        height=height,
        margin=dict(l=60, r=60, t=22, b=4),
        title=dict(text=title, font=dict(size=12, color=FONT_COLOUR), x=0.5, y=0.98),
        xaxis=dict(visible=False, fixedrange=True),
        yaxis=dict(visible=False, fixedrange=True),
    )
    for x, text, anchor in ((0, low, "right"), (255, high, "left")):
        figure.add_annotation(
            x=x,
            y=0,
            text=text,
            showarrow=False,
            xanchor=anchor,
            xshift=-6 if x == 0 else 6,
            font=dict(color=FONT_COLOUR, size=11),
        )
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
        figure.add_trace(
            go.Bar(
                y=names,
                x=[100 * v if v is not None else None for v in values],
                orientation="h",
                name=series,
                marker_color=colour,
                text=[f"{100 * v:.1f}%" if v is not None else "" for v in values],
                textposition="outside",
                cliponaxis=False,
                hovertemplate="%{y}: %{x:.1f}%<extra>" + series + "</extra>",
            )
        )
    figure.update_layout(
        barmode="group",
        height=110 + 44 * len(labels),
        margin=dict(l=10, r=50, t=40, b=40),
        xaxis=dict(title="probability (%)", range=[0, 108], fixedrange=True),
        yaxis=dict(autorange="reversed", fixedrange=True),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    )
    return styled(figure)


def temporal_figure(shares: np.ndarray, row_labels: Sequence[str], cmap: str = "inferno") -> go.Figure:
    """Where a query's attention goes in time: shares [rows, T] (each row sums to at most 1), as % per frame."""
    shares = 100 * np.asarray(shares, dtype=float)
    frames = [f"t={t}" for t in range(shares.shape[1])]
    figure = go.Figure(
        go.Heatmap(
            z=shares,
            x=frames,
            y=list(row_labels),
            colorscale=colorscale(cmap),
            zmin=0,
            zmax=100,
            text=np.vectorize(lambda v: f"{v:.0f}")(shares),
            texttemplate="%{text}",
            textfont=dict(size=11),
            colorbar=dict(title=dict(text="% of the<br>query's<br>attention"), thickness=12),
            hovertemplate="%{y}, %{x}: %{z:.1f}%<extra></extra>",
        )
    )
    figure.update_layout(
        height=80 + 28 * len(row_labels),
        margin=dict(l=10, r=10, t=10, b=30),
        yaxis=dict(autorange="reversed", fixedrange=True),
        xaxis=dict(fixedrange=True, side="top"),
    )
    return styled(figure)


def timeline_figure(num_frames: int, fps: float, indices: Sequence[int], width_s: float | None = None) -> go.Figure:
    """The video's length as a bar with a tick at every frame the model reads, labelled by its place in the clip
    (t=0, t=1, ...): how much of the video one clip covers."""
    duration = width_s or num_frames / fps
    seconds = [index / fps for index in indices]
    figure = go.Figure(
        [
            go.Scatter(x=[0, duration], y=[0, 0], mode="lines", line=dict(color="#4a4d55", width=10), hoverinfo="skip"),
            go.Scatter(
                x=seconds,
                y=[0] * len(seconds),
                mode="markers+text",
                text=[f"t={t}" for t in range(len(indices))],
                textposition="top center",
                textfont=dict(size=11),
                cliponaxis=False,
                marker=dict(symbol="line-ns", size=22, line=dict(width=3, color=SERIES_COLOURS[1])),
                customdata=np.stack([np.arange(len(indices)), indices], axis=1),
                hovertemplate="t=%{customdata[0]}: frame #%{customdata[1]} at %{x:.2f} s<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        height=110,
        margin=dict(l=10, r=10, t=30, b=40),
        showlegend=False,
        xaxis=dict(title="seconds into the video", range=[-0.02 * duration, 1.02 * duration], fixedrange=True),
        yaxis=dict(visible=False, range=[-1, 1.5], fixedrange=True),
    )
    return styled(figure)


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
        figure.add_trace(
            go.Scatter(
                x=points[index, 0],
                y=points[index, 1],
                mode="markers",
                name=name,
                customdata=index.tolist(),
                text=text,
                marker=dict(size=9, color=class_colour(label), line=dict(width=0.5, color="#111")),
                hovertemplate=f"<b>{name}</b><br>%{{text}}<extra></extra>",
            )
        )
    if extra is not None:
        x, y, name = extra
        figure.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                name=name,
                text=[name],
                textposition="top center",
                marker=dict(symbol="star", size=22, color="white", line=dict(width=2, color="#ff7f0e")),
                textfont=dict(color="white"),
                hovertemplate=f"<b>{name}</b><extra></extra>",
            )
        )
    figure.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False),
        yaxis=dict(visible=False, scaleanchor="x"),
        legend=dict(font=dict(size=11), itemsizing="constant"),
        showlegend=legend,
        dragmode="pan",
    )
    return styled(figure)


def draw_levels(figure: go.Figure, levels: Mapping[str, float], **where) -> None:
    """A dotted grey line at each value, labelled (e.g. "chance, motion 50%"); `where` picks a subplot."""
    for label, value in levels.items():
        figure.add_hline(
            y=value,
            line=dict(color="#8a8f98", dash="dot", width=1.5),
            annotation_text=label,
            annotation_position="top left",
            annotation_font_color="#8a8f98",
            **where,
        )


def comparison_figure(
    categories: Sequence[str],
    left: Mapping[str, Sequence[float | None]],
    right: Mapping[str, Sequence[float | None]],
    titles: tuple[str, str],
    y_title: str = "top-1 accuracy (%)",
    right_errors: Mapping[str, Sequence[float | None]] | None = None,
    right_levels: Mapping[str, float] | None = None,
) -> go.Figure:
    """Two bar panels over the same categories, e.g. the paper's numbers (left) beside ours (right);
    `right_levels` (label: value) draws reference lines such as chance across the right panel.

    The panels keep their own y axes: the paper's Kinetics accuracy and ours on generated data are different
    quantities, compared by their pattern across categories, not bar against bar. A series named after a
    dataset takes its colour (`series_colour`), so SSv2 and its stand-in, motion, look alike in every chart.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.08)
    for column, (panel, errors) in enumerate(((left, None), (right, right_errors)), start=1):
        for index, (series, values) in enumerate(panel.items()):
            error = None if errors is None or series not in errors else errors[series]
            figure.add_trace(
                go.Bar(
                    x=list(categories),
                    y=list(values),
                    name=series,
                    legendgroup=series,
                    showlegend=column == 1 or series not in left,
                    marker_color=series_colour(series, index),
                    marker_pattern_shape="" if column == 1 else "/",
                    error_y=None if error is None else dict(type="data", array=list(error), visible=True),
                    text=[f"{v:.1f}" if v is not None else "" for v in values],
                    textposition="outside",
                    cliponaxis=False,
                ),
                row=1,
                col=column,
            )
        figure.update_yaxes(title_text=y_title if column == 1 else None, rangemode="tozero", row=1, col=column)
    draw_levels(figure, right_levels or {}, row=1, col=2)
    figure.update_layout(
        barmode="group",
        height=380,
        margin=dict(l=60, r=10, t=40, b=10),
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
    levels: Mapping[str, float] | None = None,
) -> go.Figure:
    """Cost curves (the paper's Fig. 3): one line per scheme; `limit` (value, label) draws a dashed budget line
    and marks the points above it with ✕; `levels` (label: value) draws reference lines such as chance."""
    figure = go.Figure()
    for index, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        figure.add_trace(
            go.Scatter(
                x=list(x),
                y=list(values),
                mode="lines+markers",
                name=name,
                line=dict(color=colour, width=3),
                marker=dict(size=9),
            )
        )
        if limit is not None:
            over = [i for i, value in enumerate(values) if value > limit[0]]
            if over:
                figure.add_trace(
                    go.Scatter(
                        x=[x[i] for i in over],
                        y=[values[i] for i in over],
                        mode="markers",
                        name=f"{name}: over budget",
                        marker=dict(symbol="x", size=16, color="#ff4b4b", line=dict(width=2)),
                        showlegend=False,
                        hovertemplate=f"{name}: %{{y:.3g}}, over {limit[1]}<extra></extra>",
                    )
                )
    if limit is not None:
        figure.add_hline(
            y=limit[0],
            line=dict(color="#ff4b4b", dash="dash"),
            annotation_text=limit[1],
            annotation_position="top left",
            annotation_font_color="#ff4b4b",
        )
    draw_levels(figure, levels or {})
    y_axis = dict(title=y_title, type="log" if log_y else "linear")
    if log_y:  # an explicit range: plotly's autorange on log axes goes wild with a horizontal line
        values = [v for vs in series.values() for v in vs if v > 0] + ([limit[0]] if limit else [])
        y_axis |= dict(range=[np.log10(min(values) / 1.5), np.log10(max(values) * 1.5)], dtick="D2")
    figure.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title=x_title, tickvals=list(x)),
        yaxis=y_axis,
        legend=dict(orientation="h", y=-0.25),
    )
    return styled(figure)
