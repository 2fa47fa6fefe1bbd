"""Widgets the pages share: how a figure is shown, the query patch that clicks and sliders choose, downloads,
and the note that goes with a video of the user's own.

The query lives in `st.session_state["query"]`, not in a widget, so it outlives the page it was chosen on:
click a patch in Compare schemes, switch to Attention rollout, and the same patch is followed there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import plotly.graph_objects as go
import streamlit as st

from analysis.exports import table_csv, table_json
from analysis.figures.frames import clicked_patch
from analysis.query import Query
from timesformer.layout import Grid
from ui.session import Video

QUERY_KEYS = ("query_t", "query_row", "query_col")


def chart(figure: go.Figure, key: str, on_select: Callable[[], None] | None = None, static: bool = False) -> None:
    """Show a figure as built (no Streamlit theme, no mode bar); with `on_select`, clicks on points call it.

    `static` pictures take no hover or zoom, which spares the browser setting those up on every page switch.
    """
    config = {"displayModeBar": False, "staticPlot": static}
    if on_select is None:
        st.plotly_chart(figure, key=key, theme=None, config=config)
    else:
        st.plotly_chart(figure, key=key, theme=None, config=config, on_select=on_select, selection_mode="points")


def clickable_chart(figure: go.Figure, key: str) -> None:
    """A frame figure whose patch markers set the query when clicked."""
    chart(figure, key, on_select=lambda: _query_from_click(key))


def _query_from_click(key: str) -> None:
    patch = clicked_patch(st.session_state[key].selection.points)
    if patch is not None:
        st.session_state["query"] = patch


def _query_from_sliders() -> None:
    st.session_state["query"] = tuple(st.session_state[key] for key in QUERY_KEYS)


def current_query(grid: Grid) -> Query:
    """The query patch chosen so far (the middle of the clip at first), kept inside `grid`."""
    limits = (grid.t, grid.h, grid.w)
    default = tuple(n // 2 for n in limits)
    query = tuple(min(max(0, v), n - 1) for v, n in zip(st.session_state.get("query", default), limits))
    st.session_state["query"] = query
    return Query(*query)


def query_controls(grid: Grid) -> Query:
    """Sliders for the query patch (frame, row, column), kept in step with clicks on the frame figures."""
    query = current_query(grid)
    for key, value in zip(QUERY_KEYS, (query.t, query.row, query.col)):
        st.session_state[key] = value
    limits = (grid.t, grid.h, grid.w)
    for column, key, label, n in zip(st.columns(3), QUERY_KEYS, ("Query frame", "Query row", "Query column"), limits):
        if n > 1:
            column.slider(label, 0, n - 1, key=key, on_change=_query_from_sliders)
    return query


class Download(NamedTuple):
    """One file offered for download; `data` is computed only when its button is pressed."""

    label: str
    data: Callable[[], bytes]
    file_name: str
    mime: str
    icon: str


def table_files(stem: str, rows: Callable[[], list[dict]], data: Callable[[], object]) -> list[Download]:
    """One result as CSV (`rows`, flat) and JSON (`data`, as nested as it is), both named `stem`."""
    return [
        Download("CSV", lambda: table_csv(rows()), f"{stem}.csv", "text/csv", "table"),
        Download("JSON", lambda: table_json(data()), f"{stem}.json", "application/json", "data_object"),
    ]


def downloads(files: Sequence[Download], key: str) -> None:
    """A row of download buttons; pressing one does not rerun the page."""
    with st.container(horizontal=True):
        for index, file in enumerate(files):
            st.download_button(
                file.label,
                file.data,
                file.file_name,
                file.mime,
                icon=f":material/{file.icon}:",
                on_click="ignore",
                key=f"{key}_{index}",
            )


def upload_note(video: Video, demo: bool = True) -> None:
    """Said once on a page that shows what the demo models make of a video of the user's own."""
    if video.untrusted and demo:
        st.info(
            "**Your own video, demo models.** The demo models know only the generated classes (movements and "
            "shapes), so the class they name and its probability say nothing about your video. The attention "
            "views still show how each scheme looks at it: the mechanism, not a verdict.",
            icon=":material/info:",
        )
