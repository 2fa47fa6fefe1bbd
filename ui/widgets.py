"""Widgets the pages share: how a figure is shown, and the query patch that clicks and sliders choose.

The query lives in `st.session_state["query"]`, not in a widget, so it outlives the page it was chosen on:
click a patch in Compare schemes, switch to Attention rollout, and the same patch is followed there.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from analysis.figures import clicked_patch
from analysis.query import Query
from timesformer.layout import Grid

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


def query_controls(grid: Grid) -> Query:
    """Sliders for the query patch (frame, row, column), kept in step with clicks on the frame figures."""
    limits = (grid.t, grid.h, grid.w)
    default = tuple(n // 2 for n in limits)
    query = tuple(min(max(0, v), n - 1) for v, n in zip(st.session_state.get("query", default), limits))
    st.session_state["query"] = query
    for key, value in zip(QUERY_KEYS, query):
        st.session_state[key] = value
    for column, key, label, n in zip(st.columns(3), QUERY_KEYS, ("Query frame", "Query row", "Query column"), limits):
        if n > 1:
            column.slider(label, 0, n - 1, key=key, on_change=_query_from_sliders)
    return Query(*query)
