"""Every library the pages use, imported once before any page runs: app.py imports this module first.

Streamlit runs each session's script in a thread of its own. On a cold server, sessions that open at once
imported pandas, pyarrow, torch, ... in parallel, and when two threads each hold a module the other needs,
Python hands one of them a half-initialised module instead of deadlocking: a page failed with `AttributeError:
partially initialized module 'pandas' has no attribute 'Series'`. Imported inside this one module, everything
is loaded by the first session while the others wait on this module's import lock, holding no other.
"""

import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import plotly.subplots  # noqa: F401
import pyarrow  # noqa: F401  (Streamlit's dataframes)

import analysis.ablations  # noqa: F401
import analysis.collection  # noqa: F401  (sklearn, pyarrow.parquet)
import analysis.exports  # noqa: F401
import analysis.figures.charts  # noqa: F401
import analysis.figures.frames  # noqa: F401
import analysis.paper  # noqa: F401
import analysis.table_runs  # noqa: F401  (timesformer.train)
import timesformer.info  # noqa: F401
import ui.cached  # noqa: F401
import ui.navigation  # noqa: F401
import ui.widgets  # noqa: F401
