"""The app around every page: its pages and URLs, the navigation, the sidebar and each page's title.

Every page's URL is its file's name (pages/video.py is /video). Until the first `st.navigation` call of a
process, Streamlit treats a `pages/` folder as its old automatic multipage layout: on a fresh server the first
visit to /video runs pages/video.py alone, without app.py. It finds the page by the same name, so no "Page not
found" dialog opens (`client.showSidebarNavigation = false` hides the old layout's own menu); the page's first
call, `page_header`, sees it runs alone and draws what app.py would have drawn before it, as app.py draws it
(under the main script's hash, which is part of every widget's ID): the navigation (the `st.navigation` call
ends the old layout for the whole process), the tab's title and the sidebar. AppTest starts every run in the
old layout, so it takes that path for every page but the default one.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.sidebar import sidebar

APP_NAME = "TimeSformer Explorer"


class PageSpec(NamedTuple):
    file: str
    title: str
    icon: str
    blurb: str


PAGES = (
    PageSpec("pages/home.py", "Home", ":material/home:", "the paper's question, every scheme drawn from its code"),
    PageSpec("pages/video.py", "Video", ":material/movie:", "the frames a model reads and its prediction"),
    PageSpec("pages/compare.py", "Compare schemes", ":material/view_column:", "click a patch, see each scheme attend"),
    PageSpec(
        "pages/rollout.py", "Attention rollout", ":material/local_fire_department:", "what the whole model looks at"
    ),
    PageSpec("pages/embeddings.py", "Embeddings", ":material/scatter_plot:", "t-SNE of clip features, measured"),
    PageSpec(
        "pages/ablations.py", "Ablations", ":material/table_chart:", "Tables 1-4 and Figs. 3-4, ours beside the paper"
    ),
)
"""In the order of the navigation; the first is the default page, served at the root URL."""

_run = threading.local()
"""Whether this script thread is running a page inside `run_app` (set around `page.run()`)."""


def _navigation() -> st.Page:
    home, *others = PAGES
    pages = [
        st.Page(home.file, title=home.title, icon=home.icon, default=True, url_path="start"),
        # The default page is served at "/"; this keeps the home page's own name, /home, working too.
        st.Page(home.file, title=home.title, icon=home.icon, url_path="home", visibility="hidden"),
        *(st.Page(page.file, title=page.title, icon=page.icon) for page in others),
    ]
    return st.navigation(pages, position="top")


def _frame() -> st.Page:
    """The navigation, the browser tab's title and the sidebar; returns the page the URL asks for."""
    page = _navigation()
    st.set_page_config(page_title=f"{page.title} · {APP_NAME}", page_icon="🎞️", layout="wide")
    sidebar()
    return page


def run_app() -> None:
    """app.py: the app around the page, then the page the URL asks for."""
    page = _frame()
    _run.inside_app = True
    try:
        page.run()
    finally:
        _run.inside_app = False


def page_header(title: str) -> None:
    """Every page's first call: its title, after the app around it when the old `pages/` layout runs it alone."""
    if not getattr(_run, "inside_app", False):
        context = get_script_run_ctx()
        with context.run_with_active_hash(context.pages_manager.main_script_hash):
            _frame()
    st.title(title)
