"""The figures' shared look: one colour per thing, wherever it appears, and the dark transparent style.

Heatmap colour scales are read from the colour maps of `analysis.exports` (the same tables as the PNG/GIF/MP4
exports); each attention stage has one colour everywhere (`STAGE_COLOURS`); a paper's dataset and our stand-in
for it share one (`DATASET_COLOURS`: K400 and appearance, SSv2 and motion), in every table's chart.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from analysis.exports import colormap

FONT_COLOUR = "#e6e6e6"
QUERY_COLOUR = (66, 133, 244)
"""The query patch, blue as in the paper's Fig. 2."""
STAGE_COLOURS: dict[str, tuple[int, int, int]] = {
    "space": (228, 87, 86),
    "time": (84, 200, 75),
    "space_time": (245, 133, 24),
    "local": (114, 203, 208),
    "global": (200, 121, 200),
    "width": (238, 202, 59),
    "height": (228, 87, 86),
}
"""One colour per attention stage name, whichever scheme it belongs to; other names are drawn white."""
SERIES_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6")
DATASET_COLOURS = {
    "K400": SERIES_COLOURS[0],
    "appearance": SERIES_COLOURS[0],
    "SSv2": SERIES_COLOURS[1],
    "motion": SERIES_COLOURS[1],
}
"""A series named after a dataset ("SSv2 (paper)", "motion (ours)") takes its colour."""
CLASS_COLOURS = (
    "#4C78A8",
    "#F58518",
    "#E45756",
    "#72B7B2",
    "#54A24B",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#1F77B4",
    "#D62728",
)
AXES = dict(gridcolor="#33363d", zerolinecolor="#4a4d55", linecolor="#4a4d55", tickcolor="#4a4d55", automargin=True)


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def stage_colour(name: str) -> tuple[int, int, int]:
    return STAGE_COLOURS.get(name, (255, 255, 255))


def class_colour(label: int) -> str:
    return CLASS_COLOURS[label % len(CLASS_COLOURS)]


def series_colour(name: str, index: int) -> str:
    """The colour of a chart's series: its dataset's (see DATASET_COLOURS), else the index-th series colour."""
    dataset = next((key for key in DATASET_COLOURS if name.startswith(key)), None)
    return DATASET_COLOURS[dataset] if dataset else SERIES_COLOURS[index % len(SERIES_COLOURS)]


def colorscale(cmap: str, steps: int = 11) -> list[list]:
    """A plotly colour scale sampled from the exports' colour map table, so colour bars match the overlays.

    Colours are written rgb(r, g, b), not hex: Streamlit's chart frontend rewrites a few near-black hex values
    (#000001, #000002, ...) as theme colours, and inferno starts at #000004.
    """
    table = colormap(cmap)
    return [[i / (steps - 1), "rgb({}, {}, {})".format(*table[round(i * 255 / (steps - 1))])] for i in range(steps)]


def styled(figure: go.Figure) -> go.Figure:
    """The app's dark look on a transparent background, so the page colour shows through.

    Spelled out instead of plotly's "plotly_dark" template, which costs about 35 ms per figure to apply and
    adds 6 kB to every figure sent; show figures with `st.plotly_chart(..., theme=None)` so Streamlit keeps it.
    """
    figure.update_layout(
        template="none",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=dict(color=FONT_COLOUR, size=13),
        colorway=list(SERIES_COLOURS),
        legend=dict(bgcolor="rgba(0,0,0,0)"),
        hoverlabel=dict(bgcolor="#262730", bordercolor="#4a4d55", font=dict(color=FONT_COLOUR)),
    )
    return figure.update_xaxes(**AXES).update_yaxes(**AXES)
